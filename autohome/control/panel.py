"""The console's read model and actions: the `Controller` that commands.py talks to.

It reads what the parts own (registry, states, runner, outbox, log) and acts through
them; it never reaches into the main loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from autohome.catalog.registry import ModuleRegistry
from autohome.clock import Clock
from autohome.config import SETTINGS, Config, LiveSettings
from autohome.control.views import ModuleState, ModuleView, StatusView, cadence, module_state, upcoming_runs
from autohome.errors import AutoHomeError
from autohome.logs.archive import tail_entries
from autohome.logs.follow import Follower
from autohome.logs.tree import get_logger
from autohome.loop import LoopTimes, StopRequest
from autohome.notifications.channels import PUSHOVER
from autohome.notifications.notifier import Notifier
from autohome.notifications.outbox import Outbox
from autohome.running.admission import Admission
from autohome.running.conditions import Machine
from autohome.running.dispatch import why_off
from autohome.running.executor import RunExecutor
from autohome.running.runner import Runner, Submission
from autohome.storage.db import Database
from autohome.storage.outbox_table import OutboxRow
from autohome.storage.runs import BucketRow, run_buckets, runs_since
from autohome.storage.state import ModuleStates, RunRecord
from autohome.storage.store import store_items

log = get_logger("autohome.main")


class ControlPanel:
    """What the console may see and do, built from the daemon's parts."""

    def __init__(self, registry: ModuleRegistry, executor: RunExecutor, runner: Runner, states: ModuleStates,
                 outbox: Outbox, notifier: Notifier, db: Database, clock: Clock,
                 settings: LiveSettings, tick: timedelta, times: LoopTimes, stop: StopRequest,
                 zone: tzinfo = timezone.utc, reread: Callable[[], Config] | None = None,
                 admission: Admission | None = None,
                 recent_lines: Callable[[str, int], list[str]] = lambda name, count: [],
                 log_file: Path | None = None,
                 follow_log: Callable[[], Follower | None] = lambda: None) -> None:
        self.registry = registry
        self.executor = executor
        self.runner = runner
        self.states = states
        self.outbox = outbox
        self.notifier = notifier
        self.db = db
        self.clock = clock
        self.settings = settings
        self.tick = tick
        self.zone = zone  # the wall clock the ticks fall on
        self._reread = reread  # .env and the environment read again, as at start (cli/daemon.py)
        self.admission = admission or Admission(Machine(None), states, clock, executor.timers,
                                                executor.submit_due, tick)  # what NEEDS are met now
        self.times = times
        self.stop = stop
        self._recent_lines = recent_lines
        self.log_file = log_file
        self._follow_log = follow_log

    # --- reading ---------------------------------------------------------------------

    def views_version(self) -> tuple[int, ...]:
        """Changes whenever anything `module_views` shows changes (one shared revision)."""
        return (self.states.revision.value,)

    def module_views(self) -> list[ModuleView]:
        """Every module as the console shows it."""
        snapshot = self.runner.snapshot()
        now = self.clock.now()
        views = []
        for entry in self.registry.entries():
            status = self.states.get(entry.name)
            current = self.executor.current(entry.name) if entry.name in snapshot.running else None
            since = current[0] if current else None
            spec = entry.spec
            if spec is None:
                views.append(ModuleView(entry.name, ModuleState.BROKEN, "-", status, None,
                                        problem=entry.problem, path=str(entry.path), running_since=since))
                continue
            off = why_off(spec, self.settings)
            state = module_state(status, off=off, is_running=entry.name in snapshot.running,
                                 is_overrunning=bool(current and current[1]),
                                 is_queued=entry.name in snapshot.queued)
            try:
                next_run: datetime | None = upcoming_runs(spec.schedule, status, now, self.tick, self.zone)[0]
            except Exception:  # noqa: BLE001 - the tick marks such a module broken; the table goes on
                next_run = None
            views.append(ModuleView(
                entry.name, state, cadence(spec.schedule, self.tick), status, next_run,
                description=spec.description, problem=off or entry.problem, path=str(entry.path),
                timeout=self.executor.timeout(spec), isolated=self.executor.is_isolated(spec),
                isolated_why=self.executor.isolated_why(spec.name),
                running_since=since,
            ))
        return views

    def status(self) -> StatusView:
        """How the daemon is doing, for the console's `status`."""
        snapshot = self.runner.snapshot()
        runnable, broken = self.registry.counts()
        states: dict[str, int] = {}
        for view in self.module_views():
            states[view.state] = states.get(view.state, 0) + 1
        return StatusView(
            started_at=self.times.started_at, now=self.clock.now(), tick=self.tick,
            next_tick=self.times.next_tick_at, running=len(snapshot.running),
            max_threads=snapshot.max_threads, queued=len(snapshot.queued),
            drainer_alive=snapshot.drainer_alive, modules=runnable, broken=broken,
            outbox=self.outbox.counts(), quota=self.outbox.quota, states=states,
            last_gap=self.times.sleeps[-1] if self.times.sleeps else None,
            channels=self.outbox.waiting_by_channel(), retrying=self.outbox.retrying_by_channel(),
            has_pushover=PUSHOVER in self.outbox.names,
        )

    def recent_lines(self, name: str, count: int) -> list[str]:
        """The module's latest log lines."""
        return self._recent_lines(name, count)

    def last_output(self, name: str, count: int) -> list[str]:
        """What the module's last run printed."""
        return self.executor.last_output(name, count)

    def store_items(self, name: str) -> list[tuple[str, str]]:
        """What the module keeps in its store: (key, value as JSON), sorted by key."""
        return store_items(self.db, name)

    def stop_run(self, name: str) -> str:
        """Stop the module's isolated run now; a thread run cannot be."""
        answer = self.executor.stop(name)
        log.info("console: modules stop %s: %s", name, answer)
        return answer

    def history(self, name: str, count: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        return self.states.history(name, count)

    def log_tail(self, count: int) -> list[str]:
        """The lines of the last `count` entries of current.log (a traceback is one entry)."""
        if self.log_file is None or not self.log_file.is_file():
            return []
        return tail_entries(self.log_file, count)

    def runs_since(self, since: datetime, after_id: int = 0) -> list[tuple[int, str, RunRecord]]:
        """Every module's stored runs that started at or after `since` (and were stored after
        the run numbered `after_id`), oldest first: (number, module, run)."""
        return [(row.id, row.module, RunRecord.from_row(row))
                for row in runs_since(self.db, since, after_id)]

    def run_buckets(self, since: datetime, after_id: int = 0, per: int = 1) -> list[BucketRow]:
        """Every module's runs by ten minutes (`per` buckets together) and how they ended, from
        `since` on (only the buckets that took a run numbered above `after_id`)."""
        return run_buckets(self.db, since, after_id, per)

    def sleeps(self) -> list[tuple[datetime, datetime, str]]:
        """When the loop woke after a gap (asleep or suspended) since start: (from, to)."""
        return list(self.times.sleeps)

    def follow_log(self) -> Follower | None:
        """The log's entries from now on, as they are written (None: no log was set up)."""
        return self._follow_log()

    def notifications(self, limit: int) -> list[OutboxRow]:
        """The newest queued, sent and failed notifications."""
        return self.outbox.listing(limit)

    def notification(self, message_id: int) -> OutboxRow | None:
        """One notification by id."""
        return self.outbox.get(message_id)

    # --- acting ----------------------------------------------------------------------

    def resend(self, message_id: int) -> str:
        """Queue a failed notification again."""
        return self.outbox.resend(message_id)

    def drop(self, message_id: int) -> str:
        """Give up on a pending notification."""
        return self.outbox.drop(message_id)

    def reload(self) -> str:
        """Pick up edited, added and removed module files now, waiting up to the import
        timeout for their imports (the registry alerts about newly broken ones)."""
        return self.registry.refresh(self.registry.import_timeout_s).describe()

    def reload_settings(self) -> str:
        """Read .env again: what modules see (`config`, REQUIRES) changes at once; AutoHome's
        own settings are said to wait for a restart. Then pick up changed module files."""
        if self._reread is None:
            return "settings cannot be read again here: AutoHome was not started from the command line"
        try:
            config = self._reread()
        except AutoHomeError as exc:
            return f"settings not read again: {exc}; the settings in use stay"
        changed = self.settings.replace(config.settings)
        own = [key for key in changed if key in SETTINGS]
        theirs = [key for key in changed if key not in SETTINGS]
        where = config.env_file or ".env and the environment"
        lines = [f"settings read again from {where}: "
                 + (f"{', '.join(theirs)} changed, as modules see it from now on" if theirs else
                    "nothing modules see changed")]
        if own:
            lines.append(f"{', '.join(own)} changed: AutoHome's own, used from the next restart")
        log.info("console: reload: %s", "; ".join(lines))
        return "\n".join([*lines, self.reload()])

    def notify_test(self, message: str) -> str:
        """Queue a test notification."""
        if self.notifier.send(log, "console", message, title="AutoHome test"):
            if self.outbox.is_test_mode:
                return "kept, not sent: test mode sends nothing (start it with -t --notify to send)"
            if not self.outbox.can_send:
                return ("kept as undeliverable: set PUSHOVER_TOKEN and PUSHOVER_USER, or "
                        "AUTOHOME_NOTIFY_URLS, to send it")
            return f"test notification queued for {', '.join(self.outbox.names)}; see 'notifications'"
        return "not queued: the message is invalid (see the log)"

    def _runnable(self, name: str) -> str | None:
        """Why the module cannot be run or paused, or None if it can."""
        entry = self.registry.get(name)
        if entry is None:
            return f"no module named {name!r}"
        if entry.spec is None:
            return f"{name} is broken: fix {entry.path} first ({entry.problem})"
        off = why_off(entry.spec, self.settings)
        return f"{name} is {off}" if off else None

    def run_now(self, name: str, force: bool = False) -> str:
        """Run a module at once, through the same thread cap and backlog; a module whose NEEDS
        do not hold now is refused unless `force`."""
        refusal = self._runnable(name)
        spec = self.registry.spec_of(name)
        if refusal is not None or spec is None:
            return refusal or f"no module named {name!r}"
        why = "" if force else self.admission.refusal(spec)
        if why:
            return (f"{name} not started: it needs {' and '.join(spec.needs)}, and the machine is {why}; "
                    f"`modules run {name} force` runs it anyway")
        log.info("module %s run by hand from the console%s", name, " (forced)" if force else "")
        result = self.executor.submit(spec)
        if result in (Submission.STARTED, Submission.QUEUED):
            self.states.mark_due(name, self.clock.now())
        if result is Submission.STARTED:
            return f"{name} started"
        if result is Submission.QUEUED:
            return f"{name} queued: all {self.runner.max_threads} threads are busy"
        return f"{name} not started: {result.value}"

    def set_paused(self, name: str, paused: bool) -> str:
        """Pause or resume a module's scheduled runs."""
        refusal = self._runnable(name)
        if refusal is not None:
            return refusal
        if self.states.get(name).paused == paused:
            return f"{name} is already {'paused' if paused else 'running on schedule'}"
        self.states.set_paused(name, paused)
        log.info("module %s %s from the console", name, "paused" if paused else "resumed")
        return f"{name} {'paused' if paused else 'resumed'}"

    def request_stop(self) -> None:
        """Shut AutoHome down."""
        self.stop.request()
