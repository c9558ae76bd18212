"""Importing module files off the tick: one `import` thread takes the files in turn, and a
file whose import is slow is left to its thread while a fresh one takes the rest.

Why not a thread per file: 500 files cost 500 thread starts and as many imports fighting
for the GIL. Why not one thread for all: an import that never ends (a loop at the top of a
file) would hold every file behind it. So one thread imports while imports are quick;
when one has taken longer than SLOW_S, whoever waits on the importer starts another thread
for the files still queued. No file is imported twice at once, and no thread waits idle:
each ends when the queue is empty.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from autohome.clock import monotonic_s

SLOW_S = 0.2  # an import running this long is left to its thread; another takes the queue


class ImportJob(NamedTuple):
    """One file to import, as it was when it was seen (modification time and size)."""

    name: str
    path: Path
    stamp: tuple[int, int]


class _Worker:
    __slots__ = ("thread", "job", "since", "is_left")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.job: ImportJob | None = None
        self.since = 0.0
        self.is_left = False  # its import was slow: it finishes that one, then ends


class Importer:
    """Runs `load(job)` for each submitted file on `import` threads, and hands each result
    to `done(job, result)` on that thread."""

    def __init__(self, load: Callable[[ImportJob], object],
                 done: Callable[[ImportJob, object], None]) -> None:
        self._load = load
        self._done = done
        self._queue: deque[ImportJob] = deque()
        self._queued: set[ImportJob] = set()  # the queue's jobs, for "queued already?" in one step
        self._workers: list[_Worker] = []
        self._changed = threading.Condition()

    def submit(self, job: ImportJob) -> None:
        """Import the file, unless that version of it is queued or being imported already."""
        with self._changed:
            if job in self._queued or any(worker.job == job for worker in self._workers):
                return
            self._queue.append(job)
            self._queued.add(job)
            if not any(not worker.is_left for worker in self._workers):
                self._start_worker()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for every submitted file to be imported, starting another
        thread when one import is slow; return whether all are."""
        deadline = monotonic_s() + timeout_s
        with self._changed:
            while self._queue or self._workers:
                remaining_s = deadline - monotonic_s()
                if remaining_s <= 0:
                    return False
                self._leave_slow_ones()
                self._changed.wait(min(remaining_s, SLOW_S / 2))
            return True

    def running_longer_than(self, seconds: float) -> list[ImportJob]:
        """The imports that started more than `seconds` ago and have not ended."""
        now = monotonic_s()
        with self._changed:
            return [worker.job for worker in self._workers
                    if worker.job is not None and now - worker.since > seconds]

    def _leave_slow_ones(self) -> None:
        # Called with the lock held.
        now = monotonic_s()
        for worker in self._workers:
            if not worker.is_left and worker.job is not None and now - worker.since > SLOW_S:
                worker.is_left = True
                if self._queue:
                    self._start_worker()

    def _start_worker(self) -> None:
        # Called with the lock held.
        worker = _Worker()
        worker.thread = threading.Thread(target=self._work, args=(worker,), name="import", daemon=True)
        self._workers.append(worker)
        worker.thread.start()

    def _work(self, worker: _Worker) -> None:
        while True:
            with self._changed:
                if worker.is_left or not self._queue:
                    self._workers.remove(worker)
                    self._changed.notify_all()
                    return
                job = worker.job = self._queue.popleft()
                self._queued.discard(job)
                worker.since = monotonic_s()
            try:
                self._done(job, self._load(job))
            finally:
                with self._changed:
                    worker.job = None
                    if not self._queue:  # (a waiter looks again at its own pace: no wake-up per file)
                        self._changed.notify_all()
