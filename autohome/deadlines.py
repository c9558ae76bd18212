"""The `deadlines` thread: calls things at moments of a clock (a run's TIMEOUT, a retry, a
jittered start), waiting on that clock so that test time and suspended time count alike."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from autohome.clock import Clock

log = logging.getLogger(__name__)


class Deadline:
    """One scheduled call; `cancel()` keeps it from happening."""

    def __init__(self, when: datetime, action: Callable[[], None], what: str) -> None:
        self.when = when
        self.action = action
        self.what = what
        self.is_cancelled = False

    def cancel(self) -> None:
        """Do not call it (a no-op once it was called)."""
        self.is_cancelled = True


class Deadlines:
    """A heap of deadlines and one thread that sleeps until the earliest. The thread starts
    with the first deadline and each action must be quick: it runs on that thread."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._alarm = clock.alarm()
        self._lock = threading.Lock()
        self._heap: list[tuple[datetime, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def at(self, when: datetime, action: Callable[[], None], what: str) -> Deadline:
        """Call `action` once this clock reaches `when`."""
        deadline = Deadline(when, action, what)
        with self._lock:
            if self._stopping:
                return deadline
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
        self._alarm.raise_()
        return deadline

    def stop(self, timeout_s: float = 5.0) -> None:
        """Call nothing more; end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._alarm.raise_()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            self._alarm.reset()
            with self._lock:
                if self._stopping:
                    return
                due, earliest = self._take_due(self.clock.now())
            for deadline in due:
                try:
                    deadline.action()
                except Exception:  # the one catch of this thread: the next deadline still comes
                    log.exception("%s failed", deadline.what)
            if not due:
                self.clock.wait_until(earliest, self._alarm)

    def _take_due(self, now: datetime) -> tuple[list[Deadline], datetime | None]:
        due = []
        while self._heap and (self._heap[0][0] <= now or self._heap[0][2].is_cancelled):
            _, _, deadline = heapq.heappop(self._heap)
            if not deadline.is_cancelled:
                due.append(deadline)
        return due, self._heap[0][0] if self._heap else None
