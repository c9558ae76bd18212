"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module). Schedule positions and
pauses are written through at once; a run is written when it ends, several runs that end
together in one transaction. A killed process loses only the runs in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime

from autohome.db import Database, ModuleRow, RunRow

# Trimming old runs costs a DELETE; doing it every this many runs keeps history within
# HISTORY_PER_MODULE + TRIM_EVERY rows while most runs cost one small INSERT.
TRIM_EVERY = 20


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

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._status: dict[str, ModuleStatus] = {}
        self._since_trim: dict[str, int] = {}
        self._unsaved: list[RunRow] = []
        self._is_saving = False
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
            self._status[name] = replace(self._status.get(name, ModuleStatus()), running_since=at)

    def record_finish(self, name: str, record: RunRecord, finished: datetime) -> None:
        """Store a finished run as the module's last result."""
        with self._lock:
            self.version += 1
            self._status[name] = replace(
                self._status.get(name, ModuleStatus()), last_run=record, running_since=None
            )
            self._since_trim[name] = self._since_trim.get(name, 0) + 1
            self._unsaved.append(RunRow(0, name, record.started, finished, record.duration_s, record.error))
            if self._is_saving:
                return  # the thread that is saving takes this run in its next batch
            self._is_saving = True
        self._save_runs()

    def _save_runs(self) -> None:
        # Group commit: one thread at a time writes every run finished meanwhile in one
        # transaction, so a burst of runs costs a few commits instead of one each.
        while True:
            with self._lock:
                batch, self._unsaved = self._unsaved, []
                if not batch:
                    self._is_saving = False
                    return
                trim = {row.module for row in batch if self._since_trim.get(row.module, 0) >= TRIM_EVERY}
                for module in trim:
                    self._since_trim[module] = 0
            try:
                self.db.add_runs(batch, trim)
            except BaseException:
                with self._lock:
                    self._is_saving = False
                raise

    def history(self, name: str, limit: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        return [RunRecord.from_row(row) for row in self.db.history(name, limit)]

    def _update(self, name: str, **changes: object) -> ModuleStatus:
        # The write happens under the lock, so the database sees changes in the order made.
        with self._lock:
            self.version += 1
            status = replace(self._status.get(name, ModuleStatus()), **changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        return status
