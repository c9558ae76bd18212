"""What AutoHome knows about each module's runs: last run, outcome, pause, history (one lock)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime

HISTORY_LENGTH = 100


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


@dataclass(frozen=True)
class ModuleStatus:
    """A snapshot of one module's state, safe to read without the lock."""

    paused: bool = False
    last_due_at: datetime | None = None
    last_started: datetime | None = None
    last_run: RunRecord | None = None
    runs: int = 0
    failures: int = 0
    history: tuple[RunRecord, ...] = field(default=())


class ModuleStates:
    """Every module's status, behind one lock so threads can update it safely."""

    def __init__(self, history_length: int = HISTORY_LENGTH) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, ModuleStatus] = {}
        self._history: dict[str, deque[RunRecord]] = {}
        self._history_length = history_length

    def get(self, name: str) -> ModuleStatus:
        """The module's current status (a default one if it never ran)."""
        with self._lock:
            status = self._status.get(name, ModuleStatus())
            return replace(status, history=tuple(self._history.get(name, ())))

    def mark_due(self, name: str, at: datetime) -> None:
        """Note that a run was asked for at `at`; the schedule counts from here."""
        self._update(name, last_due_at=at)

    def record_start(self, name: str, at: datetime) -> None:
        """Note that a run started."""
        self._update(name, last_started=at)

    def record_finish(self, name: str, record: RunRecord) -> None:
        """Store a finished run as the module's last result."""
        with self._lock:
            status = self._status.get(name, ModuleStatus())
            self._status[name] = replace(
                status,
                last_run=record,
                runs=status.runs + 1,
                failures=status.failures + (0 if record.is_ok else 1),
            )
            history = self._history.setdefault(name, deque(maxlen=self._history_length))
            history.append(record)

    def set_paused(self, name: str, paused: bool) -> None:
        """Stop or resume the module's scheduled runs."""
        self._update(name, paused=paused)

    def _update(self, name: str, **changes: object) -> None:
        with self._lock:
            self._status[name] = replace(self._status.get(name, ModuleStatus()), **changes)
