"""The tick loop's arithmetic, as plain functions of times, and the stop request every part shares."""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from autohome.logs.tree import get_logger

log = get_logger("autohome.main")


def next_tick(anchor: datetime, tick: timedelta, now: datetime) -> datetime:
    """The first tick boundary (anchor + k * tick, k of any sign) strictly after `now`."""
    return anchor + ((now - anchor) // tick + 1) * tick


def last_tick(anchor: datetime, tick: timedelta, now: datetime) -> datetime:
    """The last tick boundary at or before `now`."""
    return next_tick(anchor, tick, now) - tick


def wall_clock_anchor(now: datetime, tick: timedelta, zone: tzinfo) -> datetime:
    """A tick boundary on the wall clock of `zone`: a whole number of ticks after local
    midnight, so a 30 s tick falls at :00 and :30 of each minute and a 1 h tick on the hour,
    and two AutoHomes started at different moments tick together."""
    local = now.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return last_tick(midnight, tick, local).astimezone(now.tzinfo)


def tick_at_or_after(moment: datetime, tick: timedelta, zone: tzinfo) -> datetime:
    """The first tick at or after `moment`: when something due then is started."""
    anchor = wall_clock_anchor(moment, tick, zone)
    return moment if anchor == moment else anchor + tick


class Wake(enum.Enum):
    """How the loop woke from its wait for the next tick."""

    ON_TIME = "on time"
    SLEPT = "after a gap"  # a laptop lid, a stopped process: at least one tick was missed
    WENT_BACK = "clock went back"


# A wall clock this much behind the deadline when the wait for it ended was set back (a real
# wait ends on time by the monotonic clock; a virtual one exactly at the deadline).
WENT_BACK_AFTER = timedelta(seconds=2)


def classify_wake(deadline: datetime, now: datetime, tick: timedelta) -> Wake:
    """Whether waking at `now` for the tick due at `deadline` is on time, late by a whole
    tick or more, or early (the clock was set back while the loop waited)."""
    if now < deadline - WENT_BACK_AFTER:
        return Wake.WENT_BACK
    if now - deadline >= tick:
        return Wake.SLEPT
    return Wake.ON_TIME


class StopRequest:
    """"Shut down", as the console, a signal or end of input asks for it. The loop and the
    runner wait on it; whoever asks needs nothing but this object."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.exit_code = 0  # 1 when AutoHome stops because it cannot go on (descriptors.py)
        self._wakers: list[Callable[[], None]] = []

    def on_request(self, wake: Callable[[], None]) -> None:
        """Call `wake` when a stop is asked for (to end a wait that would not see the event)."""
        self._wakers.append(wake)

    def request(self, exit_code: int = 0) -> None:
        """Ask everything to stop; safe from any thread. The process ends with the highest
        exit code asked for."""
        self.exit_code = max(self.exit_code, exit_code)
        if not self.event.is_set():
            log.info("shutdown requested")
        self.event.set()
        for wake in self._wakers:
            wake()

    @property
    def is_requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.event.is_set()


MAX_SLEEPS_KEPT = 1000  # gaps the timeline can show; a week of nightly sleeps is 7


GAP_KINDS = {"asleep": "asleep or suspended", "stopped": "AutoHome was stopped (a clean stop)",
             "crashed": "AutoHome stopped without a clean stop (a crash, kill -9 or a power loss)"}


class LoopTimes:
    """When the loop started, when it ticks next, and the gaps in its watch (a suspended
    laptop, AutoHome stopped): written by the loop, read by `status` and the timeline."""

    def __init__(self, started_at: datetime,
                 remember: Callable[[datetime, datetime, str], None] = lambda start, end, kind: None) -> None:
        self.started_at = started_at
        self.next_tick_at: datetime | None = None
        self.sleeps: deque[tuple[datetime, datetime, str]] = deque(maxlen=MAX_SLEEPS_KEPT)
        self.remember = remember  # keeps each gap in the database (storage/sleeps.py)

    def slept(self, asleep: datetime, awake: datetime, kind: str = "asleep") -> None:
        """A gap in the watch (GAP_KINDS): keep it for the timeline, and in the database."""
        self.sleeps.append((asleep, awake, kind))
        try:
            self.remember(asleep, awake, kind)
        except Exception:  # noqa: BLE001 - a full disk, say: the timeline loses the gray, nothing else
            log.exception("could not store the gap from %s to %s in the state database",
                          asleep.isoformat(timespec="seconds"), awake.isoformat(timespec="seconds"))
