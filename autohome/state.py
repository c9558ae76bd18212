"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module). Schedule positions and
pauses are written through at once. A finished run is handed to the `state-writer`
thread; while other runs are still going it waits up to GROUP_WAIT_S for them, so a
burst of runs costs a few transactions instead of one each. A killed process loses the
runs in flight and, in a burst, the records of runs that ended in the last GROUP_WAIT_S.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime

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


@dataclass(frozen=True)
class RunRecord:
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


@dataclass(frozen=True)
class ModuleStatus:
    """A snapshot of one module's state, safe to read without the lock."""

    paused: bool = False
    first_seen: datetime | None = None
    last_due_at: datetime | None = None
    running_since: datetime | None = None
    last_run: RunRecord | None = None


class ModuleStates:
    """Every module's status, behind one lock, written through to the database."""

    def __init__(self, db: Database, retry_s: float = RETRY_S) -> None:
        self.db = db
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # runs to write, runs written, closing
        self._status: dict[str, ModuleStatus] = {}
        self._since_trim: dict[str, int] = {}
        self._running = 0  # runs started and not yet finished
        self._unsaved: list[RunRow] = []
        self._handed_over = 0  # finished runs given to the writer, ever
        self._written = 0  # ... and written (or given up)
        self._writer: threading.Thread | None = None
        self._closed = False
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
        if not seen and not due:
            return
        with self._lock:
            due_names = set(due)
            rows = []
            for name in dict.fromkeys([*seen, *due]):
                status = self._status.get(name, ModuleStatus())
                changes: dict[str, object] = {}
                if status.first_seen is None:
                    changes["first_seen"] = now
                if name in due_names:
                    changes["last_due_at"] = now
                if changes:
                    self.version += 1
                    status = self._status[name] = replace(status, **changes)
                    rows.append(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
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
            status = self._status.get(name, ModuleStatus())
            if status.running_since is None:
                self._running += 1
            self._status[name] = replace(status, running_since=at)

    def record_finish(self, name: str, record: RunRecord, finished: datetime) -> None:
        """Make the run the module's last result, and hand it to the writer."""
        with self._lock:
            self.version += 1
            status = self._status.get(name, ModuleStatus())
            if status.running_since is not None:
                self._running -= 1
            self._status[name] = replace(status, last_run=record, running_since=None)
            if self._closed:
                return  # a run abandoned at shutdown that ended after all: in flight, not stored
            self._since_trim[name] = self._since_trim.get(name, 0) + 1
            self._unsaved.append(RunRow(0, name, record.started, finished, record.duration_s, record.error))
            self._handed_over += 1
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_runs, name="state-writer", daemon=True)
                self._writer.start()
            self._changed.notify_all()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every run finished so far is in the database; return whether it is."""
        with self._lock:
            target = self._handed_over
            return self._changed.wait_for(lambda: self._written >= target, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Write the finished runs still waiting, then stop the writer."""
        with self._lock:
            self._closed = True
            writer = self._writer
            self._changed.notify_all()
        if writer is not None:
            writer.join(timeout_s)

    def _write_runs(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._unsaved or self._closed)
                if self._running and not self._closed:  # a burst: let the others join this batch
                    self._changed.wait_for(lambda: self._closed or not self._running, GROUP_WAIT_S)
                batch, self._unsaved = self._unsaved, []
                if not batch:
                    return  # closed, and nothing left
                trim = {row.module for row in batch if self._since_trim.get(row.module, 0) >= TRIM_EVERY}
                for module in trim:
                    self._since_trim[module] = 0
            try:
                self.db.add_runs(batch, trim)
            except Exception:  # noqa: BLE001 - a full or vanished disk: keep the runs, retry
                self._keep_for_retry(batch)
                continue
            with self._lock:
                self._written += len(batch)
                self._changed.notify_all()

    def _keep_for_retry(self, batch: list[RunRow]) -> None:
        log.exception("could not store %d finished run(s) in %s; they are kept and retried in %gs",
                      len(batch), self.db.path, self.retry_s)
        with self._lock:
            self._unsaved[:0] = batch
            dropped = len(self._unsaved) - MAX_UNSAVED
            if dropped > 0:
                del self._unsaved[:dropped]
                self._written += dropped
                log.error("gave up %d unstored run record(s): more than %d waited", dropped, MAX_UNSAVED)
                self._changed.notify_all()
            if not self._closed:
                self._changed.wait_for(lambda: self._closed, self.retry_s)
            elif self._unsaved:
                self._written += len(self._unsaved)  # closing and still failing: give them up
                self._unsaved = []
                self._changed.notify_all()

    def history(self, name: str, limit: int) -> list[RunRecord]:
        """The module's stored runs, newest first (waiting for the runs just finished)."""
        self.flush()
        return [RunRecord.from_row(row) for row in self.db.history(name, limit)]

    def _update(self, name: str, **changes: object) -> ModuleStatus:
        # The write happens under the lock, so the database sees changes in the order made.
        with self._lock:
            self.version += 1
            status = replace(self._status.get(name, ModuleStatus()), **changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        return status
