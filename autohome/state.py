"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module). Schedule positions and
pauses are written through at once. A finished run is handed to the `state-writer`
thread; while runs of the same tick are still going it waits GROUP_WAIT_S for them, so a
burst of runs costs a few transactions instead of one each. The writer logs each run's
"finished" line once the run is stored: a killed process loses only runs whose end was
never logged, and the log itself knows nothing of the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from autohome.db import Database, ModuleRow, RunRow
from autohome.revision import Revision

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


# NamedTuples: immutable like frozen dataclasses, several times cheaper to make (by the thousand).
class RunRecord(NamedTuple):
    """One finished run. `outcome` is ok, error, timeout (stopped at its TIMEOUT), stopped
    (by hand or at shutdown) or overrun (a thread run that passed its TIMEOUT, then ended)."""

    started: datetime
    duration_s: float
    error: str | None = None
    outcome: str = ""  # "": from error (ok or error)

    @property
    def is_ok(self) -> bool:
        """Whether the run ended without raising (or being stopped)."""
        return self.error is None

    @property
    def how(self) -> str:
        """ok, error, timeout, stopped or overrun."""
        return self.outcome or ("ok" if self.error is None else "error")

    @classmethod
    def from_row(cls, row: RunRow) -> RunRecord:
        """A stored run as a record."""
        outcome = "" if row.outcome in (None, "ok", "error") else row.outcome
        return cls(row.started, row.duration_s or 0.0, row.error, outcome)


class ModuleStatus(NamedTuple):
    """A snapshot of one module's state, safe to read without the lock."""

    paused: bool = False
    first_seen: datetime | None = None
    last_due_at: datetime | None = None
    running_since: datetime | None = None
    last_run: RunRecord | None = None
    is_overrunning: bool = False  # the current run passed its TIMEOUT


UNKNOWN = ModuleStatus()  # a module not seen before (made once: `dict.get`'s default is made every call)


class ModuleStates:
    """Every module's status, behind one lock. Schedule positions and pauses are written
    through to the database; finished runs go to it by the `state-writer` thread."""

    def __init__(self, db: Database, retry_s: float = RETRY_S, revision: Revision | None = None,
                 announce: Callable[[Any], object] | None = None) -> None:
        self.db = db
        self.retry_s = retry_s
        self.revision = revision or Revision()  # bumped with every change of any status
        self._announce = announce or _handle
        self._lock = threading.Lock()
        self._to_write = threading.Condition(self._lock)  # the writer waits: runs to write, or closing
        self._stored = threading.Condition(self._lock)  # flush() waits: runs written (or given up)
        self._status: dict[str, ModuleStatus] = {}
        self._since_trim: dict[str, int] = {}
        self._tick_runs_left = 0  # runs the latest tick started that have not finished
        self._unsaved: list[_Finished] = []
        self._handed_over = 0  # finished runs given to the writer, ever
        self._written = 0  # ... and written (or given up)
        self._writer: threading.Thread | None = None
        self._closing = threading.Event()
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
            return self._status.get(name, UNKNOWN)

    def snapshot(self) -> dict[str, ModuleStatus]:
        """Every module's status at once (one lock, not one per module)."""
        with self._lock:
            return dict(self._status)

    def mark_due(self, name: str, at: datetime) -> None:
        """Note that a run was asked for at `at` (by hand); the schedule counts from here."""
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
                was = self._status.get(name, UNKNOWN)
                first_seen = was.first_seen or now
                last_due_at = now if name in due_names else was.last_due_at
                if first_seen is was.first_seen and last_due_at is was.last_due_at:
                    continue
                self._status[name] = was._replace(first_seen=first_seen, last_due_at=last_due_at)
                rows.append(ModuleRow(name, was.paused, first_seen, last_due_at))
            self.db.save_modules(rows)
            self.revision.bump()

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
            was = self._status.get(name, UNKNOWN)
            # Spelled out rather than _replace: every run does this, under the lock.
            self._status[name] = ModuleStatus(was.paused, was.first_seen, was.last_due_at, at, was.last_run)
        self.revision.bump()

    def flag_overrun(self, name: str) -> bool:
        """Mark the module's current run as past its TIMEOUT; return whether it was not yet."""
        with self._lock:
            was = self._status.get(name)
            if was is None or was.running_since is None or was.is_overrunning:
                return False
            self._status[name] = was._replace(is_overrunning=True)
        self.revision.bump()
        return True

    def record_finish(self, name: str, record: RunRecord, finished: datetime,
                      announcement: object = None) -> RunRecord | None:
        """Make the run the module's last result and hand it to the writer, which hands the
        `announcement` (the "finished" line) to `announce` once the run is stored.

        Returns the run it replaces as the last result."""
        with self._lock:
            was = self._status.get(name, UNKNOWN)
            self._status[name] = ModuleStatus(was.paused, was.first_seen, was.last_due_at, None, record)
            self.revision.bump()
            self._tick_runs_left = max(0, self._tick_runs_left - 1)
            stored = not self._closing.is_set()  # else a run abandoned at shutdown that ended after all
            if stored:
                how = record.outcome or ("ok" if record.error is None else "error")  # record.how, inline
                row = RunRow(0, name, record.started, finished, record.duration_s, record.error, how)
                self._unsaved.append((row, announcement))
                self._handed_over += 1
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_runs, name="state-writer", daemon=True)
                    self._writer.start()
                self._to_write.notify()
        if not stored and announcement is not None:
            self._announce(announcement)
        return was.last_run

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every run finished so far is in the database; return whether it is."""
        with self._lock:
            target = self._handed_over
            return self._stored.wait_for(lambda: self._written >= target, timeout_s)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write the finished runs still waiting, then stop the writer; return whether it ended."""
        with self._lock:
            self._closing.set()
            writer = self._writer
            self._to_write.notify_all()
        if writer is not None:
            writer.join(timeout_s)
        return writer is None or not writer.is_alive()

    def _write_runs(self) -> None:
        try:
            while self._write_batch():
                pass
        except Exception:  # a bug here must not silently stop storing runs
            log.exception("the state writer stopped; finished runs are no longer stored")

    def _write_batch(self) -> bool:
        with self._lock:
            self._to_write.wait_for(lambda: self._unsaved or self._closing.is_set())
            in_burst = self._tick_runs_left > 0 and not self._closing.is_set()
        if in_burst:  # the tick's other runs will end soon: let them join this batch
            self._closing.wait(GROUP_WAIT_S)
        with self._lock:
            batch, self._unsaved = self._unsaved, []
        if not batch:
            return False  # closed, and nothing left
        rows = [row for row, _ in batch]
        try:
            self.db.add_runs(rows, self._due_for_trim(rows))
        except Exception:  # noqa: BLE001 - a full or vanished disk: keep the runs, retry
            self._announce_all(batch)  # the lines must not wait for a disk that may not come back
            self._keep_for_retry([(row, None) for row in rows])
            return True
        self._announce_all(batch)
        with self._lock:
            self._written += len(batch)
            self._stored.notify_all()
        return True

    def _announce_all(self, batch: list[_Finished]) -> None:
        for _, announcement in batch:
            if announcement is not None:
                self._announce(announcement)

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

    def _keep_for_retry(self, batch: list[_Finished]) -> None:
        log.exception("could not store %d finished run(s) in %s; they are kept and retried in %gs",
                      len(batch), self.db.path, self.retry_s)
        with self._lock:
            self._unsaved[:0] = batch
            dropped = len(self._unsaved) - MAX_UNSAVED
            if dropped > 0:
                del self._unsaved[:dropped]
                self._written += dropped
                log.error("gave up %d unstored run record(s): more than %d waited", dropped, MAX_UNSAVED)
                self._stored.notify_all()
            if not self._closing.is_set():
                self._to_write.wait_for(self._closing.is_set, self.retry_s)
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
            status = self._status.get(name, UNKNOWN)._replace(**changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        self.revision.bump()
        return status


# A finished run on its way to the database, and the line to log once it is there (a plain tuple).
_Finished = tuple[RunRow, object]


def _handle(record: logging.LogRecord) -> None:
    logging.getLogger(record.name).handle(record)
