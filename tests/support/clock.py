"""FakeClock: time that tests move by hand, and the moments and waits the tests share."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from autohome.clock import ClockBase

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)
WAIT_S = 15.0  # safety net for waits on events; tests never sleep


class FakeClock(ClockBase):
    """A clock that tests move by hand; the main loop's wait moves it straight to the deadline."""

    def __init__(self, start: datetime) -> None:
        super().__init__()
        self.current = start

    def now(self) -> datetime:
        """The time the test set."""
        return self.current

    def wait_for_waiters(self, count: int, timeout_s: float) -> bool:
        """Block until at least `count` threads wait on this clock, and every thread that waits
        on it is asleep having seen the time as it is now: whatever the last move of time made
        due has been done (a test steps time only then)."""

        def settled() -> bool:
            alive = {thread.ident for thread in threading.enumerate()}
            waiters = self._waiters & alive
            return len(waiters) >= count and all(self._asleep.get(i) == self._moves for i in waiters)

        with self._changed:
            return self._changed.wait_for(settled, timeout_s)

    def advance(self, seconds: float) -> None:
        """Move time forward (or backward, with a negative number)."""
        self.current += timedelta(seconds=seconds)
        self._moved()

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Jump to the deadline without sleeping."""
        self.current = max(self.current, deadline)
        self._moved()
        return stop.is_set()

    def wake(self) -> None:
        """Nothing blocks, so nothing to wake."""
