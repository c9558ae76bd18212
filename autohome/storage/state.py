"""What AutoHome knows about each module: schedule position, pause, runs. Kept in the database.

Reads come from an in-memory copy (a tick reads every module). Schedule positions and
pauses are written through at once; finished runs go to the database through the
`state-writer` thread (runwriter.py), which logs each run's "finished" line once it is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from autohome.logs.tree import get_logger
from autohome.revision import Revision
from autohome.storage.db import Database, DatabaseError, ModuleRow, RunRow, StorageFailure
from autohome.storage.runs import add_runs, history, latest_runs
from autohome.storage.runwriter import RETRY_S, RunWriter
from autohome.text import Word

log = get_logger("autohome.state")


class Outcome(Word):
    """How a run ended, as the runs table stores it and the console and the page show it."""

    OK = "ok"
    ERROR = "error"  # it raised
    TIMEOUT = "timeout"  # an isolated run, stopped at its TIMEOUT
    STOPPED = "stopped"  # an isolated run, stopped from the console or at shutdown
    OVERRUN = "overrun"  # a thread run that went past its TIMEOUT, then ended by itself
    SKIPPED = "skipped"  # not started: its NEEDS did not hold, or MISSED said so; `error` says why

    @classmethod
    def of(cls, error: str | None) -> Outcome:
        """What a run that was not stopped nor overran counts as."""
        return cls.OK if error is None else cls.ERROR


# The outcomes that are more than "ok" or "error", by their stored word.
_STOPPED_OR_LATE = {outcome.value: outcome for outcome in (Outcome.TIMEOUT, Outcome.STOPPED, Outcome.OVERRUN,
                                                           Outcome.SKIPPED)}


# NamedTuples: immutable like frozen dataclasses, and cheaper to make by the thousand.
class RunRecord(NamedTuple):
    """One finished run; `outcome` says how it ended when more than its error does."""

    started: datetime
    duration_s: float
    error: str | None = None
    outcome: Outcome | None = None  # None: ok or error, from `error`

    @property
    def is_ok(self) -> bool:
        """Whether the run ended without raising (or being stopped); a skipped run is no failure."""
        return self.error is None or self.outcome is Outcome.SKIPPED

    @property
    def how(self) -> Outcome:
        """How it ended: ok, error, timeout, stopped or overrun."""
        return self.outcome or (Outcome.OK if self.error is None else Outcome.ERROR)

    @classmethod
    def from_row(cls, row: RunRow) -> RunRecord:
        """A stored run as a record."""
        outcome = _STOPPED_OR_LATE.get(row.outcome) if row.outcome is not None else None
        return cls(row.started, row.duration_s or 0.0, row.error, outcome)


class ModuleStatus(NamedTuple):
    """A snapshot of one module's state, safe to read without the lock. A run going on is
    not here: the executor owns it (RunExecutor.current)."""

    paused: bool = False
    first_seen: datetime | None = None
    last_due_at: datetime | None = None
    last_run: RunRecord | None = None


UNKNOWN = ModuleStatus()  # a module not seen before (made once: `dict.get`'s default is made every call)


class ModuleStates:
    """Every module's status, behind one lock. Schedule positions and pauses are written
    through to the database; finished runs go to it by the `state-writer` thread."""

    def __init__(self, db: Database, retry_s: float = RETRY_S, revision: Revision | None = None,
                 announce: Callable[[Any], object] | None = None) -> None:
        self.db = db
        self.revision = revision or Revision()  # bumped with every change of any status
        self.runs = RunWriter(db, announce, retry_s)
        self._lock = threading.Lock()
        self._status: dict[str, ModuleStatus] = {}
        latest = latest_runs(db)
        self._stored_before_start = max((run.id for run in latest.values()), default=0)
        # Only these can have failed in a row before the start: the others cost no query.
        self._failing_at_start = {name for name, run in latest.items() if run.error is not None}
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
        db.on_replaced(self._write_memory)  # a damaged file replaced: what is held here goes in

    def _write_memory(self) -> None:
        """Write every module's schedule position, pause and last run into a fresh file."""
        with self._lock:
            statuses = dict(self._status)
        self.db.save_modules([ModuleRow(name, status.paused, status.first_seen, status.last_due_at)
                              for name, status in statuses.items()])
        last_runs = [RunRow(0, name, run.started, None, run.duration_s, run.error, run.how)
                     for name, status in statuses.items() if (run := status.last_run) is not None]
        if last_runs:
            add_runs(self.db, last_runs, set())

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
        self.runs.expect(len(due))
        with self._lock:
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

    def record_skip(self, name: str, record: RunRecord) -> None:
        """Store a run that was not started (its history and the timeline show it); the
        module's last result stays its last real run, and it stays due."""
        row = RunRow(0, name, record.started, record.started, 0.0, record.error, Outcome.SKIPPED)
        with self._lock:
            self.runs.add(row, None)
        self.revision.bump()

    def record_finish(self, name: str, record: RunRecord, finished: datetime,
                      announcement: object = None) -> RunRecord | None:
        """Make the run the module's last result and hand it to the writer, which hands the
        `announcement` (the "finished" line) to `announce` once the run is stored.

        Returns the run it replaces as the last result."""
        how = record.outcome or (Outcome.OK if record.error is None else Outcome.ERROR)  # record.how, inline
        row = RunRow(0, name, record.started, finished, record.duration_s, record.error, how)
        with self._lock:  # handed over under the lock: a flush() that sees the result stores it
            was = self._status.get(name, UNKNOWN)
            # Spelled out rather than _replace: every run does this, under the lock.
            self._status[name] = ModuleStatus(was.paused, was.first_seen, was.last_due_at, record)
            self.runs.add(row, announcement)
        self.revision.bump()
        return was.last_run

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every run finished so far is in the database; return whether it is."""
        return self.runs.flush(timeout_s)

    def flush_lines(self, timeout_s: float = 5.0) -> bool:
        """Wait until the "finished" line of every run ended so far is logged."""
        return self.runs.flush_lines(timeout_s)

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write the finished runs still waiting, then stop the writer; return whether it ended."""
        return self.runs.close(timeout_s)

    def history(self, name: str, limit: int) -> list[RunRecord]:
        """The module's stored runs, newest first (waiting for the runs just finished)."""
        self.flush()
        return [RunRecord.from_row(row) for row in history(self.db, name, limit)]

    def failures_before_start(self, name: str, tries: int, enough: int) -> int:
        """How many runs in a row the module failed before this start, up to `enough`
        (each failed run stored `tries` rows, one a try; stopped and skipped runs are left
        out). A restart so neither forgets a failing streak nor alerts about it twice."""
        if name not in self._failing_at_start:
            return 0
        tries = max(tries, 1)
        try:
            rows = history(self.db, name, (enough + 1) * tries + 20)
        except StorageFailure:
            log.warning("could not read %s's last runs from the database; its failures in a row "
                        "count from this start", name, exc_info=True)
            return 0
        failed = 0
        for row in rows:
            if row.id > self._stored_before_start or row.outcome in (Outcome.STOPPED, Outcome.SKIPPED):
                continue
            if row.error is None:
                break
            failed += 1
        return min(failed // tries, enough)

    def _update(self, name: str, **changes: Any) -> ModuleStatus:
        # The write happens under the lock, so the database sees changes in the order made.
        with self._lock:
            status = self._status.get(name, UNKNOWN)._replace(**changes)
            self._status[name] = status
            self.db.save_module(ModuleRow(name, status.paused, status.first_seen, status.last_due_at))
        self.revision.bump()
        return status


def remembered(path: Path) -> dict[str, ModuleStatus]:
    """What a daemon remembers of each module (schedule position, pause, last run), read
    without writing anything: {} when there is no database, or it cannot be read."""
    if not path.is_file():
        return {}
    try:
        db = Database(path, read_only=True)
    except DatabaseError:
        return {}
    try:
        latest, rows = latest_runs(db), {row.name: row for row in db.modules()}
    except StorageFailure:
        return {}
    finally:
        db.close()
    return {name: ModuleStatus(row.paused if row else False, row.first_seen if row else None,
                               row.last_due_at if row else None,
                               RunRecord.from_row(last) if (last := latest.get(name)) else None)
            for name in rows.keys() | latest.keys() for row in [rows.get(name)]}

