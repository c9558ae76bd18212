"""The clocks: the only code in AutoHome that reads the time or waits for it.

`SystemClock` is the real one; tests step a FakeClock (tests/support/clock.py); `VirtualClock`
(cli/testmode.py, test mode) is moved by lines from standard input. Waits go through a clock,
so time in test mode is virtual for every thread.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Waker:
    """What the main thread sleeps on: a socket pair that another thread, or a signal
    (through signal.set_wakeup_fd), can make readable.

    Sleeping on an Event is not enough: a signal delivered to some other thread does not
    interrupt the main thread's wait, so Ctrl-C or SIGTERM would go unnoticed for a tick.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = socket.socketpair()
        self._read_end.setblocking(False)
        self._write_end.setblocking(False)

    def descriptors(self) -> tuple[int, int]:
        """Its two sockets' descriptors (for descriptors.py)."""
        return self._read_end.fileno(), self._write_end.fileno()

    @property
    def signal_fd(self) -> int:
        """The descriptor to hand to signal.set_wakeup_fd."""
        return self._write_end.fileno()

    def wait(self, timeout_s: float | None) -> None:
        """Sleep until woken or until the timeout (None: no timeout)."""
        select.select([self._read_end], [], [], timeout_s)
        try:
            while self._read_end.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass  # drained

    def wake(self) -> None:
        """Wake the sleeper (safe from any thread; a full buffer already means 'awake')."""
        try:
            self._write_end.send(b"\0")
        except OSError:
            pass  # BlockingIOError: plenty of wake-ups are already pending

    def close(self) -> None:
        """Release the sockets (closed under it already, if a module closed them)."""
        for end in (self._read_end, self._write_end):
            try:
                end.close()
            except OSError:
                pass


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


# The current time as Unix seconds, as a log record carries it (the C function itself:
# every run line asks for it).
epoch_s: Callable[[], float] = time.time


def system_zone(environ: Mapping[str, str] | None = None,
                warn: Callable[[str], None] = lambda message: None) -> tzinfo:
    """The machine's time zone, with its daylight-saving rules where they can be found.

    Tries $TZ, then the /etc/localtime link; falls back to today's fixed UTC offset
    (which misses DST changes: set AUTOHOME_TIMEZONE then), and says so through `warn`.
    """
    environ = os.environ if environ is None else environ
    candidates = [environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    warn("could not find this machine's time zone rules; set AUTOHOME_TIMEZONE "
         "(for example Europe/Berlin) so AT and CRON schedules follow daylight saving")
    return datetime.now().astimezone().tzinfo or timezone.utc


def monotonic_s() -> float:
    """Seconds on a clock that never jumps (for deadlines of real connections)."""
    return time.monotonic()


def stopwatch() -> Callable[[], float]:
    """Start a stopwatch; calling the result gives the real seconds elapsed, even in test mode."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


class Alarm:
    """A flag that one thread raises and another waits on beside its clock's deadline
    (see `wait_until`): the outbox sender's "there is a new message"."""

    def __init__(self, changed: threading.Condition) -> None:
        self._changed = changed
        self._is_raised = False

    def raise_(self) -> None:
        """Wake whoever waits on this alarm."""
        with self._changed:
            self._is_raised = True
            self._changed.notify_all()

    def reset(self) -> None:
        """Lower the flag before looking at the work it announces."""
        with self._changed:
            self._is_raised = False

    @property
    def is_raised(self) -> bool:
        """Whether `raise_` was called since the last `reset`."""
        return self._is_raised


class Clock(Protocol):
    """What the daemon needs from time: read it, and wait for it."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """The main loop's wait: until `deadline` or until `stop` is set; return whether to stop."""
        ...

    def wake(self) -> None:
        """Make a pending `sleep_until` notice that `stop` was set."""
        ...

    def alarm(self) -> Alarm:
        """A new alarm that `wait_until` can wait on."""
        ...

    def wait_until(self, deadline: datetime | None, alarm: Alarm) -> None:
        """A worker thread's wait: until this clock reaches `deadline` (None: no deadline)
        or the alarm is raised."""
        ...


class ClockBase:
    """`alarm` and `wait_until` for every clock: one condition that alarms and moves of
    time notify. A real clock plans each wait on its monotonic clock and looks at the wall
    clock at least every `max_wait_s`: a wait ends when the planned time has passed (however
    far the wall clock was set back meanwhile) or when the wall clock reaches the deadline
    (a suspended laptop, a clock set forward)."""

    max_wait_s: float | None = None  # None: time only moves when told (virtual clocks)

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._moves = 0  # how often time was moved by hand (virtual clocks)
        self._asleep: dict[int, int] = {}  # thread -> the move it last looked at, while it sleeps
        self._waiters: set[int] = set()  # every thread that ever waited on this clock

    def alarm(self) -> Alarm:
        """A new alarm on this clock."""
        return Alarm(self._changed)

    def now(self) -> datetime:  # pragma: no cover - every clock defines it
        raise NotImplementedError

    def _monotonic_s(self) -> float | None:
        """Seconds on a clock that never jumps; None for clocks moved by hand."""
        return None

    def wait_until(self, deadline: datetime | None, alarm: Alarm) -> None:
        """Wait until this clock reaches `deadline` (or the time it was away from it has
        passed, on a real clock) or the alarm is raised."""
        me = threading.get_ident()
        plan = None if deadline is None else _Plan(self, deadline)
        with self._changed:
            self._waiters.add(me)
            try:
                while not alarm.is_raised:
                    remaining_s = None if plan is None else plan.remaining_s()
                    if remaining_s is not None and remaining_s <= 0:
                        return
                    if self._asleep.get(me) != self._moves:  # newly asleep, or time moved
                        self._asleep[me] = self._moves
                        self._changed.notify_all()  # for wait_for_waiters
                    # (Not on every wake-up: two waiters would wake each other for ever.)
                    if remaining_s is not None and self.max_wait_s is not None:
                        remaining_s = min(remaining_s, self.max_wait_s)
                    self._changed.wait(None if self.max_wait_s is None else remaining_s)
            finally:
                self._asleep.pop(me, None)

    def _moved(self) -> None:
        """Time moved (a virtual clock): let `wait_until` look at it again."""
        with self._changed:
            self._moves += 1
            self._changed.notify_all()


class _Plan:
    """A wait for `deadline`: how long is left, by the wall clock and, on a real clock, by
    the monotonic one from when the wait began; whichever says less."""

    __slots__ = ("clock", "deadline", "started_s", "planned_s")

    def __init__(self, clock: ClockBase, deadline: datetime) -> None:
        self.clock = clock
        self.deadline = deadline
        self.started_s = clock._monotonic_s()
        self.planned_s = (deadline - clock.now()).total_seconds()

    def remaining_s(self) -> float:
        by_wall = (self.deadline - self.clock.now()).total_seconds()
        if self.started_s is None:
            return by_wall
        now_s = self.clock._monotonic_s()
        assert now_s is not None
        return min(by_wall, self.planned_s - (now_s - self.started_s))


class SystemClock(ClockBase):
    """Real time. Waiting is on a Waker, so shutdown and signals never wait for a tick; each
    wait is planned on the monotonic clock (see ClockBase), so a wall clock set back an hour
    stalls nothing. `wall` and `monotonic` are the two clocks it reads (a test gives a wall
    clock that it sets back and forward)."""

    max_wait_s = 60.0

    def __init__(self, waker: Waker | None = None, wall: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.waker = waker or Waker()
        self._wall = wall
        self._monotonic = monotonic

    def now(self) -> datetime:
        """The current wall-clock time."""
        return self._wall()

    def _monotonic_s(self) -> float:
        return self._monotonic()

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Sleep until the deadline (by the wall clock, or for as long as it was away by the
        monotonic one, whichever comes first), or until woken with `stop` set."""
        plan = _Plan(self, deadline)
        while not stop.is_set():
            remaining_s = plan.remaining_s()
            if remaining_s <= 0:
                return False
            self.waker.wait(min(remaining_s, self.max_wait_s))
        return True

    def wake(self) -> None:
        """Interrupt a sleep so that the stop event is seen."""
        self.waker.wake()
