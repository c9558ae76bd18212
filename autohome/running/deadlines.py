"""The `deadlines` thread: calls things at moments of a clock (a run's TIMEOUT, a retry, a
jittered start), waiting on that clock so that test time and suspended time count alike."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import datetime

from autohome.clock import Clock
from autohome.logs.tree import get_logger

log = get_logger("autohome.deadlines")


class _ClockThread:
    """A thread that sleeps on a clock until something is due, started when first needed."""

    name = "clock-thread"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._alarm = clock.alarm()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def _start_thread(self) -> None:
        """Start the thread if it is not running yet (call with the lock held)."""
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:  # pragma: no cover - each kind has its own
        raise NotImplementedError

    def stop(self, timeout_s: float = 5.0) -> None:
        """Do nothing more; end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._alarm.raise_()
        if thread is not None:
            thread.join(timeout_s)


class Deadlines(_ClockThread):
    """A heap of deadlines and one thread that sleeps until the earliest. The thread starts
    with the first deadline and each action must be quick: it runs on that thread."""

    name = "deadlines"

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self._heap: list[tuple[datetime, int, Callable[[], None], str]] = []
        self._order = itertools.count()

    def at(self, when: datetime, action: Callable[[], None], what: str) -> None:
        """Call `action` once this clock reaches `when` (`what` names it if it fails). There is
        no cancelling: an action that may come too late checks whether it still applies (every
        run sets one for its TIMEOUT, so this stays cheap)."""
        with self._lock:
            if self._stopping:
                return
            is_earliest = not self._heap or when < self._heap[0][0]
            heapq.heappush(self._heap, (when, next(self._order), action, what))
            self._start_thread()
        if is_earliest:  # else the thread's wait ends before this one is due anyway
            self._alarm.raise_()

    def _loop(self) -> None:
        while True:
            self._alarm.reset()
            with self._lock:
                if self._stopping:
                    return
                due, earliest = self._take_due(self.clock.now())
            for action, what in due:
                try:
                    action()
                except Exception:  # the one catch of this thread: the next deadline still comes
                    log.exception("%s failed", what)
            if not due:
                self.clock.wait_until(earliest, self._alarm)

    def _take_due(self, now: datetime) -> tuple[list[tuple[Callable[[], None], str]], datetime | None]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            _, _, action, what = heapq.heappop(self._heap)
            due.append((action, what))
        return due, self._heap[0][0] if self._heap else None


class WatchedRun:
    """A run going on, as the watchdog sees it."""

    __slots__ = ("name", "deadline", "subject", "overran", "fired")

    def __init__(self, name: str, deadline: datetime, subject: object) -> None:
        self.name = name
        self.deadline = deadline
        self.subject = subject  # what the run is of (a ModuleSpec)
        self.overran = False  # a thread run passed its TIMEOUT
        self.fired = False


class Watchdog(_ClockThread):
    """The `watchdog` thread: calls `on_timeout(run)` when a run passes its deadline. Every
    run starts and ends here, so it costs a dictionary entry, not a heap and a wake-up: the
    thread is woken only when a run starts that is due before all the others."""

    name = "watchdog"

    def __init__(self, clock: Clock, on_timeout: Callable[[WatchedRun], None]) -> None:
        super().__init__(clock)
        self.on_timeout = on_timeout
        self._runs: dict[str, WatchedRun] = {}
        self._target: datetime | None = None  # when the thread wakes next

    def started(self, name: str, deadline: datetime, subject: object = None) -> WatchedRun:
        """Watch a run that must end by `deadline` (on this watchdog's clock)."""
        run = WatchedRun(name, deadline, subject)
        with self._lock:
            self._runs[name] = run
            wake = self._target is None or deadline < self._target
            if wake:
                self._target = deadline
                self._start_thread()
        if wake:
            self._alarm.raise_()
        return run

    def ended(self, run: WatchedRun) -> None:
        """The run is over (the thread may still wake for it, and find nothing to do)."""
        with self._lock:
            if self._runs.get(run.name) is run:
                del self._runs[run.name]

    def is_current(self, run: WatchedRun) -> bool:
        """Whether the run is still going on."""
        return self._runs.get(run.name) is run

    def _loop(self) -> None:
        while True:
            self._alarm.reset()
            now = self.clock.now()
            with self._lock:
                if self._stopping:
                    return
                due = [run for run in self._runs.values() if not run.fired and run.deadline <= now]
                for run in due:
                    run.fired = True
                pending = [run.deadline for run in self._runs.values() if not run.fired]
                self._target = min(pending) if pending else None
                target = self._target
            for run in due:
                try:
                    self.on_timeout(run)
                except Exception:  # the one catch of this thread: the other runs are still watched
                    log.exception("handling the TIMEOUT of %s failed", run.name)
            if not due:
                self.clock.wait_until(target, self._alarm)
