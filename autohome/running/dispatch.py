"""A tick's runs: which modules are due (on schedule, not paused, not off for a missing
setting, not still running from before), which of them start (admission.py), and starting
them. Time is an argument: "what is due at 07:00?" is a plain call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from autohome.catalog.loader import ModuleSpec
from autohome.catalog.schedule import is_due
from autohome.logs.tree import get_logger
from autohome.running.admission import Admission
from autohome.running.executor import RunExecutor
from autohome.running.runner import Runner, Submission
from autohome.storage.state import UNKNOWN, ModuleStates, ModuleStatus

log = get_logger("autohome.main")


def missing_settings(spec: ModuleSpec, settings: Mapping[str, str]) -> list[str]:
    """The settings the module REQUIRES that are not set to anything."""
    return [key for key in spec.requires if not settings.get(key, "").strip()]


def why_off(spec: ModuleSpec, settings: Mapping[str, str]) -> str:
    """Why a module does not run yet ('' when it has every setting it requires)."""
    missing = missing_settings(spec, settings)
    return f"off: set {', '.join(missing)} in .env to turn it on" if missing else ""


def due_modules(specs: list[ModuleSpec], statuses: Mapping[str, ModuleStatus], now: datetime,
                settings: Mapping[str, str], is_busy: Callable[[str], bool],
                cannot: Callable[[ModuleSpec, Exception], None] | None = None) -> list[ModuleSpec]:
    """The modules a tick at `now` starts: on schedule, not paused, not off for a missing
    setting, and not still running or queued from before. A module whose next run cannot be
    computed is handed to `cannot` (or raises, without one); the others are still looked at."""
    due = []
    for spec in specs:
        status = statuses.get(spec.name) or UNKNOWN
        if status.paused or (spec.requires and missing_settings(spec, settings)):
            continue
        first_seen = status.first_seen or now
        try:
            on_time = is_due(spec.schedule, status.last_due_at, first_seen, now)
        except Exception as exc:
            if cannot is None:
                raise
            cannot(spec, exc)
            continue
        if on_time and not is_busy(spec.name):
            due.append(spec)
    return due


class Dispatcher:
    """Each tick: the due modules, admitted (NEEDS, MISSED), their schedule positions noted in
    one transaction, then started through the executor."""

    def __init__(self, specs: Callable[[], list[ModuleSpec]], states: ModuleStates, runner: Runner,
                 executor: RunExecutor, admission: Admission, settings: Mapping[str, str],
                 cannot: Callable[[ModuleSpec, Exception], None] | None = None) -> None:
        self.specs = specs  # the modules that can run now (ModuleRegistry.specs)
        self.states = states
        self.runner = runner
        self.executor = executor
        self.admission = admission
        self.settings = settings
        self.cannot = cannot  # told of a module whose next run cannot be computed

    def due(self, now: datetime) -> list[ModuleSpec]:
        """The modules a tick at `now` would find due."""
        return due_modules(self.specs(), self.states.snapshot(), now, self.settings, self.runner.is_busy,
                           self.cannot)

    def tick(self, now: datetime, gap: str = "") -> list[str]:
        """Start every module due at `now` that may start; return the names started or queued.
        `gap` says why this tick comes late, if it does ("asleep", "stopped")."""
        specs, statuses = self.specs(), self.states.snapshot()
        unseen = [spec.name for spec in specs
                  if (status := statuses.get(spec.name)) is None or status.first_seen is None]
        due = due_modules(specs, statuses, now, self.settings, self.runner.is_busy, self.cannot)
        start, missed = self.admission.admit(due, statuses, now, gap)
        self.states.start_tick(now, unseen, [spec.name for spec in start])
        for name in missed:  # the schedule counts from now: the next run is the next scheduled one
            self.states.mark_due(name, now)
        results = {spec.name: self.executor.submit_due(spec, now) for spec in start}
        queued = sum(result is Submission.QUEUED for result in results.values())
        if queued:
            log.info("%d module(s) wait in the backlog: all %d threads are busy",
                     queued, self.runner.max_threads)
        return [name for name, result in results.items()
                if result in (Submission.STARTED, Submission.QUEUED, Submission.DELAYED)]

