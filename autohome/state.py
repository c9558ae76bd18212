"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module); every change is written
through to the database at once, so a restart, or a killed process, finds it there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime

from autohome.db import Database, ModuleRow, RunRow


@dataclass(frozen=True)
class RunRecord:
    """One finished (or interrupted) run."""

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
        self._run_ids: dict[str, int] = {}
        latest = db.run_counts()
        rows = {row.name: row for row in db.modules()}
        for name in rows.keys() | latest.keys():
            row = rows.get(name)
            last = latest.get(name, (0, 0, None))[2]
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

    def known(self) -> list[str]:
        """Every module name with a stored state."""
        with self._lock:
            return list(self._status)

    def ensure(self, name: str, now: datetime) -> ModuleStatus:
        """Remember when a module was first seen: calendar schedules count from there."""
        with self._lock:
            status = self._status.get(name)
            if status is not None and status.first_seen is not None:
                return status
        return self._update(name, first_seen=now)

    def mark_due(self, name: str, at: datetime) -> None:
        """Note that a run was asked for at `at`; the schedule counts from here."""
        self._update(name, last_due_at=at)

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
        """Note that a run started (stored at once: a crash leaves it marked interrupted)."""
        run_id = self.db.start_run(name, at)
        with self._lock:
            self._run_ids[name] = run_id
            self._status[name] = replace(self._status.get(name, ModuleStatus()), running_since=at)

    def record_finish(self, name: str, record: RunRecord, finished: datetime) -> None:
        """Store a finished run as the module's last result."""
        with self._lock:
            run_id = self._run_ids.pop(name, None)
            self._status[name] = replace(
                self._status.get(name, ModuleStatus()), last_run=record, running_since=None
            )
        if run_id is not None:
            self.db.finish_run(run_id, finished, record.duration_s, record.error)

    def history(self, name: str, limit: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        return [RunRecord.from_row(row) for row in self.db.history(name, limit)]

    def _update(self, name: str, **changes: object) -> ModuleStatus:
        # The write happens under the lock, so the database sees changes in the order made.
        with self._lock:
            status = replace(self._status.get(name, ModuleStatus()), **changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        return status
