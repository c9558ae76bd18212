"""The Runner: one thread per run, a thread cap, a backlog and its drainer."""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from autohome.logs.tree import get_logger
from autohome.revision import Revision

log = get_logger("autohome.scheduler")


class Submission(enum.Enum):
    """What `Runner.submit` did with a run."""

    STARTED = "started"
    QUEUED = "queued"
    DELAYED = "starts within its JITTER"
    BUSY = "already running or queued"
    CLOSED = "shutting down"


class RunnerSnapshot(NamedTuple):
    """What the Runner is doing right now."""

    running: tuple[str, ...]
    queued: tuple[str, ...]
    drainer_alive: bool
    max_threads: int
    is_closed: bool = False


class Runner:
    """Runs each job in its own thread, at most `max_threads` at once.

    Overflow waits in a FIFO backlog. A single drainer thread exists only while
    the backlog is non-empty: it waits (on a condition, never polling) for a
    slot, starts the next job, and exits when the backlog is empty.
    """

    def __init__(self, max_threads: int, revision: Revision | None = None) -> None:
        self.max_threads = max_threads
        self.revision = revision or Revision()  # bumped whenever what runs or waits changes
        # A plain lock with a condition on it, rather than Condition()'s RLock and its
        # Python-level `with`: every run takes it twice, and a burst's runs are thousands.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # threads waiting on _changed: a change is announced only to listeners
        self._running: dict[str, threading.Thread | None] = {}  # None: starting
        self._backlog: deque[tuple[str, Callable[[], None], Callable[[], None] | None]] = deque()
        self._queued: set[str] = set()  # the backlog's names, for O(1) "is it queued?"
        self._drainer: threading.Thread | None = None
        self._closed = False

    def submit(self, name: str, job: Callable[[], None],
               prepare: Callable[[], None] | None = None) -> Submission:
        """Start the job now if a thread is free, else queue it; a name runs once at a time.

        `prepare` is called on the thread that starts the job, just before: a new thread's
        first steps are dear, so the bookkeeping of a run is better done there (see
        docs/performance.md, "Run lines")."""
        with self._lock:
            if self._closed:
                return Submission.CLOSED
            if name in self._running or name in self._queued:
                return Submission.BUSY
            if self._backlog or len(self._running) >= self.max_threads:
                self._backlog.append((name, job, prepare))
                self._queued.add(name)
                self.revision.bump()
                if self._drainer is None:
                    self._drainer = threading.Thread(
                        target=self._drain, name="backlog-drainer", daemon=True
                    )
                    self._drainer.start()
                return Submission.QUEUED
            self._reserve(name)
        self._launch(name, job, prepare)
        return Submission.STARTED

    def is_busy(self, name: str) -> bool:
        """Whether the name is running or waiting in the backlog."""
        with self._lock:
            return name in self._running or name in self._queued

    def snapshot(self) -> RunnerSnapshot:
        """Running and queued names, and whether the drainer is alive."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> RunnerSnapshot:
        return RunnerSnapshot(
            running=tuple(self._running),
            queued=tuple(name for name, _, _ in self._backlog),
            drainer_alive=self._drainer is not None,
            max_threads=self.max_threads,
            is_closed=self._closed,
        )

    def wait_for(self, condition: Callable[[RunnerSnapshot], bool], timeout_s: float | None) -> bool:
        """Block until `condition` holds for what runs and waits; return whether it does."""
        with self._lock:
            return self._wait(lambda: condition(self._snapshot()), timeout_s)

    def wait_idle(self, stop: threading.Event | None = None, timeout_s: float | None = None) -> bool:
        """Block until nothing runs or waits (or `stop` is set); return whether idle."""
        with self._lock:
            return self._wait(
                lambda: (not self._running and not self._backlog)
                or (stop is not None and stop.is_set()),
                timeout=timeout_s,
            ) and not self._running and not self._backlog

    def wake_waiters(self) -> None:
        """Let `wait_idle` re-check its stop event."""
        with self._lock:
            self._notify()

    def close(self, grace_s: float) -> tuple[list[str], list[str]]:
        """Refuse new jobs, drop the backlog, give running jobs `grace_s` to end.

        Returns the names dropped from the backlog and the names still running.
        """
        with self._lock:
            self._closed = True
            dropped = [name for name, _, _ in self._backlog]
            self._backlog.clear()
            self._queued.clear()
            self._notify()
            self._wait(lambda: not self._running, timeout=grace_s)
            return dropped, list(self._running)

    def _notify(self) -> None:
        # Called with the lock held.
        if self._waiting:
            self._changed.notify_all()

    def _wait(self, predicate: Callable[[], object], timeout: float | None = None) -> bool:
        # Called with the lock held.
        self._waiting += 1
        try:
            return bool(self._changed.wait_for(predicate, timeout))
        finally:
            self._waiting -= 1

    def _reserve(self, name: str) -> None:
        # Called with the lock held: the slot is taken now, the thread starts after release,
        # so nobody waits on the lock while a thread is being started.
        self._running[name] = None
        self.revision.bump()
        self._notify()

    def _launch(self, name: str, job: Callable[[], None], prepare: Callable[[], None] | None) -> None:
        thread = threading.Thread(target=self._run, args=(name, job), name=f"module:{name}", daemon=True)
        self._running[name] = thread
        try:
            if prepare is not None:
                prepare()
            thread.start()
        except Exception:  # a thread refused (RuntimeError), or the bookkeeping failed
            log.exception("cannot start a thread for %s; it will be retried when due", name)
            with self._lock:
                self._running.pop(name, None)
                self.revision.bump()
                self._notify()

    def _run(self, name: str, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:
            log.exception("internal error while running %s", name)
        finally:
            with self._lock:
                self._running.pop(name, None)
                self.revision.bump()
                self._notify()

    def _drain(self) -> None:
        # Seeing the backlog empty and marking the drainer gone happen under one hold of
        # the lock: a submit can never queue work behind a drainer on its way out.
        try:
            while True:
                with self._lock:
                    self._wait(
                        lambda: len(self._running) < self.max_threads or self._closed
                        or not self._backlog
                    )
                    if self._closed or not self._backlog:
                        self._drainer = None
                        self._notify()
                        return
                    name, job, prepare = self._backlog.popleft()
                    self._queued.discard(name)
                    self._reserve(name)
                self._launch(name, job, prepare)
        except Exception:
            log.exception("backlog drainer failed")
            with self._lock:
                self._drainer = None
                self._notify()
