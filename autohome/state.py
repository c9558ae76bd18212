"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module). Schedule positions and
pauses are written through at once. A finished run is handed to the `state-writer`
thread; while runs of the same tick are still going it waits GROUP_WAIT_S for them, so a
burst of runs costs a few transactions instead of one each. The log writer waits for
the runs to be stored before it writes the lines that say they finished: a killed
process loses only runs whose end was never logged.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import NamedTuple

from autohome.db import Database, ModuleRow, RunRow

log = logging.getLogger(__name__)

# Trimming old runs costs a DELETE; doing it every this many runs keeps history within
# HISTORY_PER_MODULE + TRIM_EVERY rows while most runs cost one small INSERT.
TRIM_EVERY = 20
# While other runs are still going, the writer waits this long for their records too.
GROUP_WAIT_S = 0.02
# After a failed write (a full disk), the records are kept and tried again this much later;
# at most MAX_UNSAVED are kept, the oldest are given up first.
RETRY_S = 5.0
MAX_UNSAVED = 10_000
# The log writer never waits longer than this for runs to be stored (a very slow disk).
BARRIER_LIMIT_S = 10.0


# The value types are NamedTuples: immutable like frozen dataclasses, but several times
# cheaper to make, and a burst of runs makes them by the thousand.
class RunRecord(NamedTuple):
    """One finished run."""

    started: datetime
    duration_s: float
    error: str | None = None

    @property
    def is_ok(self) -> bool:
        """Whether the run ended without raising."""
        return self.error is None

    @classmethod
    def from_row(cls, row: RunRow) -> RunRecord:
        """A stored run as a record."""
        return cls(row.started, row.duration_s or 0.0, row.error)


class ModuleStatus(NamedTuple):
    """A snapshot of one module's state, safe to read without the lock."""

    paused: bool = False
    first_seen: datetime | None = None
    last_due_at: datetime | None = None
    running_since: datetime | None = None
    last_run: RunRecord | None = None


class ModuleStates:
    """Every module's status, behind one lock. Schedule positions and pauses are written
    through to the database; finished runs go to it by the `state-writer` thread."""

    def __init__(self, db: Database, retry_s: float = RETRY_S) -> None:
        self.db = db
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._to_write = threading.Condition(self._lock)  # the writer waits: runs to write, or closing
        self._stored = threading.Condition(self._lock)  # flush() waits: runs written, or writes failing
        self._status: dict[str, ModuleStatus] = {}
        self._since_trim: dict[str, int] = {}
        self._tick_runs_left = 0  # runs the latest tick started that have not finished
        self._unsaved: list[RunRow] = []
        self._handed_over = 0  # finished runs given to the writer, ever
        self._written = 0  # ... and written (or given up)
        self._writer: threading.Thread | None = None
        self._closed = False
        self._failing = False  # the latest write failed; the runs wait for the retry
        self._closing = threading.Event()  # self._closed, for waits outside the lock
        self.version = 0  # changes with every change of any status (the console caches by it)
        latest = db.latest_runs()
        rows = {row.name: row for row in db.modules()}
        for name in rows.keys() | latest.keys():
            row = rows.get(name)
            last = latest.get(name)
            self._status[name] = ModuleStatus(
                paused=row.paused if row else False,
                first_seen=row.first_seen if row else None,
                last_due_at=row.last_due_at if row else None,
                last_run=RunRecord.from_row(last) if last else None,
            )

    def get(self, name: str) -> ModuleStatus:
        """The module's current status (a default one if it is unknown)."""
        with self._lock:
            return self._status.get(name, ModuleStatus())

    def snapshot(self) -> dict[str, ModuleStatus]:
        """Every module's status at once (one lock, not one per module)."""
        with self._lock:
            return dict(self._status)

    def mark_due(self, name: str, at: datetime) -> None:
        """Note that a run was asked for at `at`; the schedule counts from here."""
        self._update(name, last_due_at=at)

    def start_tick(self, now: datetime, seen: list[str], due: list[str]) -> None:
        """One tick's bookkeeping in one transaction: first sightings, and the runs it starts."""
        with self._lock:
            self._tick_runs_left = len(due)
            if not seen and not due:
                return
            due_names = set(due)
            rows = []
            for name in dict.fromkeys([*seen, *due]):
                was = self._status.get(name, ModuleStatus())
                first_seen = was.first_seen or now
                last_due_at = now if name in due_names else was.last_due_at
                if first_seen is was.first_seen and last_due_at is was.last_due_at:
                    continue
                self.version += 1
                self._status[name] = ModuleStatus(was.paused, first_seen, last_due_at, was.running_since,
                                                  was.last_run)
                rows.append(ModuleRow(name, was.paused, first_seen, last_due_at))
            self.db.save_modules(rows)

    def set_paused(self, name: str, paused: bool) -> None:
        """Stop or resume the module's scheduled runs."""
        self._update(name, paused=paused)

    def clamp_future(self, now: datetime) -> list[str]:
        """After the clock went back, count schedules from now instead of from the future."""
        with self._lock:
            names = [n for n, s in self._status.items() if s.last_due_at and s.last_due_at > now]
        for name in names:
            self._update(name, last_due_at=now)
        return names

    def record_start(self, name: str, at: datetime) -> None:
        """Note that a run started (in memory only: the run is stored when it ends)."""
        with self._lock:
            self.version += 1
            was = self._status.get(name, ModuleStatus())
            # Spelled out rather than _replace: every run does this, under the lock.
            self._status[name] = ModuleStatus(was.paused, was.first_seen, was.last_due_at, at, was.last_run)

    def record_finish(self, name: str, record: RunRecord, finished: datetime) -> RunRecord | None:
        """Make the run the module's last result, and hand it to the writer.

        Returns the run it replaces as the last result."""
        with self._lock:
            self.version += 1
            was = self._status.get(name, ModuleStatus())
            self._status[name] = ModuleStatus(was.paused, was.first_seen, was.last_due_at, None, record)
            self._tick_runs_left = max(0, self._tick_runs_left - 1)
            if self._closed:
                return was.last_run  # a run abandoned at shutdown that ended after all: not stored
            self._unsaved.append(RunRow(0, name, record.started, finished, record.duration_s, record.error))
            self._handed_over += 1
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_runs, name="state-writer", daemon=True)
                self._writer.start()
            self._to_write.notify()
            return was.last_run

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every run finished so far is in the database; return whether it is."""
        with self._lock:
            target = self._handed_over
            return self._stored.wait_for(lambda: self._written >= target, timeout_s)

    def stored_barrier(self) -> None:
        """Wait until every run finished so far is in the database, unless writes are
        failing (a full disk): the log writer calls this before writing lines, and its
        lines must not wait for a disk that may not come back."""
        with self._lock:
            target = self._handed_over
            self._stored.wait_for(lambda: self._written >= target or self._failing, BARRIER_LIMIT_S)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write the finished runs still waiting, then stop the writer."""
        with self._lock:
            self._closed = True
            self._closing.set()
            writer = self._writer
            self._to_write.notify_all()
        if writer is not None:
            writer.join(timeout_s)

    def _write_runs(self) -> None:
        while True:
            with self._lock:
                self._to_write.wait_for(lambda: self._unsaved or self._closed)
                in_burst = self._tick_runs_left > 0 and not self._closed
            if in_burst:  # the tick's other runs will end soon: let them join this batch
                self._closing.wait(GROUP_WAIT_S)
            with self._lock:
                batch, self._unsaved = self._unsaved, []
            if not batch:
                return  # closed, and nothing left
            trim = self._due_for_trim(batch)
            try:
                self.db.add_runs(batch, trim)
            except Exception:  # noqa: BLE001 - a full or vanished disk: keep the runs, retry
                self._keep_for_retry(batch)
                continue
            with self._lock:
                self._written += len(batch)
                self._failing = False
                self._stored.notify_all()

    def _due_for_trim(self, batch: list[RunRow]) -> set[str]:
        # Only the writer thread counts, so the count needs no lock.
        trim = set()
        for row in batch:
            count = self._since_trim.get(row.module, 0) + 1
            if count >= TRIM_EVERY:
                trim.add(row.module)
                count = 0
            self._since_trim[row.module] = count
        return trim

    def _keep_for_retry(self, batch: list[RunRow]) -> None:
        log.exception("could not store %d finished run(s) in %s; they are kept and retried in %gs",
                      len(batch), self.db.path, self.retry_s)
        with self._lock:
            self._failing = True
            self._stored.notify_all()  # stored_barrier() stops waiting
            self._unsaved[:0] = batch
            dropped = len(self._unsaved) - MAX_UNSAVED
            if dropped > 0:
                del self._unsaved[:dropped]
                self._written += dropped
                log.error("gave up %d unstored run record(s): more than %d waited", dropped, MAX_UNSAVED)
                self._stored.notify_all()
            if not self._closed:
                self._to_write.wait_for(lambda: self._closed, self.retry_s)
            elif self._unsaved:  # shutting down, and still failing: give them up, and say so
                log.error("shutting down: %d finished run(s) could not be stored in %s and are lost",
                          len(self._unsaved), self.db.path)
                self._written += len(self._unsaved)
                self._unsaved = []
                self._stored.notify_all()

    def history(self, name: str, limit: int) -> list[RunRecord]:
        """The module's stored runs, newest first (waiting for the runs just finished)."""
        self.flush()
        return [RunRecord.from_row(row) for row in self.db.history(name, limit)]

    def _update(self, name: str, **changes: object) -> ModuleStatus:
        # The write happens under the lock, so the database sees changes in the order made.
        with self._lock:
            self.version += 1
            status = self._status.get(name, ModuleStatus())._replace(**changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        return status
