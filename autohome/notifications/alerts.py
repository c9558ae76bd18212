"""When a module's failures become an alert: after ALERT_AFTER failed runs in a row, a
recovery alert once it works again, one "flapping" alert for a module that keeps flipping
(then silence until it has been steady for an hour), and nothing with ALERT = "never".

It sees each run's outcome after retries. A module's failures in a row before a restart
are read from its stored runs the first time it ends after the start; which modules are
flapping (and their last flip, to ten minutes) is kept in the database's meta table, so a
restart neither alerts about a flapping module again nor forgets to say when it is steady.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from autohome.durations import format_duration
from autohome.logs.tree import get_logger

log = get_logger("autohome.main")

FLAP_CHANGES = 5  # this many flips between failing and working within FLAP_WINDOW: flapping
FLAP_WINDOW = timedelta(hours=1)
STEADY = timedelta(hours=1)  # a flapping module is quiet until it has not flipped for this long
FLAPPING_KEY = "alerts.flapping"  # meta: {module: its last flip} for the flapping ones
REMEMBER_EVERY = timedelta(minutes=10)  # a flapping module's last flip is written at most this often


class Memory(Protocol):
    """Where the flapping modules are kept across restarts (the database's meta table)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


class AlertRule(Protocol):
    """A module's alert settings (ALERT_AFTER, ALERT, ALERT_PRIORITY; catalog.loader reads them)."""

    @property
    def after(self) -> int:
        """Failed runs in a row that make an alert."""
        ...

    @property
    def never(self) -> bool:
        """ALERT = "never": no alert at all."""
        ...

    @property
    def priority(self) -> int:
        """The failure alert's priority (2: a Pushover emergency)."""
        ...


class _Track:
    __slots__ = ("failures", "alerted", "emergency", "failing", "changes", "flapping")

    def __init__(self) -> None:
        self.failures = 0  # failed runs in a row
        self.alerted = False  # a failure alert went out and no recovery yet
        self.emergency = False  # ...as a Pushover emergency, to be cancelled on recovery
        self.failing = False
        self.changes: deque[datetime] = deque()
        self.flapping = False


Send = Callable[..., None]  # (message, title, priority=0, tags=None)


class AlertPolicy:
    """Decides, run by run, which of a module's failures and recoveries are worth an alert."""

    def __init__(self, send: Send, cancel: Callable[[str], None], memory: Memory | None = None) -> None:
        self.send = send
        self.cancel = cancel
        self._tracks: dict[str, _Track] = {}
        self._memory = memory
        self._lock = threading.Lock()  # runs of different modules end on different threads
        self._flapping: dict[str, datetime] = self._recall()  # module -> its last flip, as written

    def _recall(self) -> dict[str, datetime]:
        try:
            text = self._memory.get_meta(FLAPPING_KEY) if self._memory is not None else None
            return {name: datetime.fromisoformat(at) for name, at in json.loads(text or "{}").items()}
        except Exception:  # noqa: BLE001 - damaged or unreadable: flapping counts afresh
            log.warning("could not read which modules were flapping; their flips count afresh", exc_info=True)
            return {}

    def _remember(self, name: str, last_flip: datetime | None) -> None:
        """Write a flapping module's last flip (None: it is steady again), for a restart."""
        with self._lock:
            if last_flip is None:
                if self._flapping.pop(name, None) is None:
                    return
            elif (was := self._flapping.get(name)) is not None and last_flip - was < REMEMBER_EVERY:
                return
            else:
                self._flapping[name] = last_flip
            text = json.dumps({module: at.isoformat() for module, at in self._flapping.items()})
        if self._memory is None:
            return
        try:
            self._memory.set_meta(FLAPPING_KEY, text)
        except Exception:  # noqa: BLE001 - a full disk: remembered in memory until the next write
            log.warning("could not store which modules are flapping", exc_info=True)

    def after_run(self, name: str, error: str | None, now: datetime, rule: AlertRule,
                  failed_before: Callable[[int], int] = lambda enough: 0) -> None:
        """A run's final outcome (after its retries): alert if the rule says so.
        `failed_before(enough)`: the runs in a row the module failed before this start (up to
        `enough`), asked once, for its first run seen since the start."""
        track = self._tracks.get(name)
        if track is None:
            track = self._tracks[name] = _Track()
            track.failures = failed_before(rule.after)
            track.failing = track.failures > 0
            # At ALERT_AFTER before the restart: alerted then, its recovery still to send.
            track.alerted = track.failures >= rule.after and not rule.never
            track.emergency = track.alerted and rule.priority == 2
            with self._lock:
                last_flip = self._flapping.get(name)
            if last_flip is not None:  # flapping before the restart, alerted about then
                track.flapping, track.alerted = True, False
                track.changes.append(last_flip)
        failed = error is not None
        if failed != track.failing:
            track.failing = failed
            track.changes.append(now)
        while track.changes and now - track.changes[0] > FLAP_WINDOW:
            track.changes.popleft()
        track.failures = track.failures + 1 if failed else 0
        if rule.never:
            track.alerted = False
            return
        if track.flapping:
            if track.changes and now - track.changes[-1] < STEADY:
                self._remember(name, track.changes[-1])
                return  # still flipping, or not steady for an hour yet
            track.flapping = False
            self._remember(name, None)
            state = f"it fails: {error}" if failed else "it works"
            self.send(f"{name} has been steady for {format_duration(STEADY)}: {state}",
                      "AutoHome: module steady again")
            track.alerted = failed
            return
        if len(track.changes) >= FLAP_CHANGES:
            track.flapping = True
            self._remember(name, track.changes[-1])
            self._cancel_emergency(name, track)
            self.send(f"{name} is flapping: it changed between failing and working {len(track.changes)} "
                      f"times in the last {format_duration(FLAP_WINDOW)}; no more alerts about it until it "
                      f"has been steady for {format_duration(STEADY)}", "AutoHome: module flapping")
            track.alerted = False
            return
        if failed and not track.alerted and track.failures >= rule.after:
            runs = f" ({track.failures} runs in a row)" if rule.after > 1 else ""
            track.alerted = True
            track.emergency = rule.priority == 2
            self.send(f"{name} failed{runs}: {error}", "AutoHome: module failing", priority=rule.priority,
                      tags=_tag(name) if track.emergency else None)
        elif not failed and track.alerted:
            track.alerted = False
            self._cancel_emergency(name, track)
            self.send(f"{name} works again", "AutoHome: module recovered")

    def _cancel_emergency(self, name: str, track: _Track) -> None:
        if track.emergency:
            track.emergency = False
            self.cancel(_tag(name))


def _tag(name: str) -> str:
    """The tag an emergency about a module carries, to cancel it by."""
    return f"autohome-{name}"
