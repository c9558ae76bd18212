"""Main: wires the parts together, ticks on the clock, and shuts down cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import NamedTuple

from autohome import __version__
from autohome.clock import Clock, stopwatch
from autohome.commands import Commands, ModuleView, StatusView
from autohome.config import Config
from autohome.console import ConsoleLimits, ConsoleServer, is_loopback
from autohome.db import Database, OutboxRow
from autohome.durations import format_duration
from autohome.loader import BrokenModule, ModuleRegistry, ModuleSpec
from autohome.logs import MODULE_LOGGER, LogSetup, tail_lines
from autohome.logwriter import FastLog
from autohome.notify import PushoverClient
from autohome.outbox import Notifier, Outbox
from autohome.schedule import is_due
from autohome.scheduler import Runner, Submission, next_tick
from autohome.state import ModuleStates, ModuleStatus, RunRecord
from autohome.store import ModuleStore

log = logging.getLogger("autohome.main")

PRUNE_EVERY = timedelta(days=1)


class ModuleKit(NamedTuple):
    """What a module is handed that stays the same from run to run."""

    log: logging.Logger
    notify: Callable[..., bool]


class Main:
    """The daemon: every tick, start the modules that are due; serve the console meanwhile."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        modules: ModuleRegistry | list[ModuleSpec | BrokenModule],
        db: Database | None = None,
        client: PushoverClient | None = None,
        recent_lines: Callable[[str, int], list[str]] = lambda name, count: [],
        settle_each_tick: bool = False,
        zone: tzinfo = timezone.utc,
        logs: LogSetup | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.registry = modules if isinstance(modules, ModuleRegistry) else ModuleRegistry.of(modules)
        self.db = db if db is not None else Database.in_memory()
        self.states = ModuleStates(self.db)
        self._run_log = FastLog(log)
        self.log_file: Path | None = None
        if logs is not None:
            self._run_log = logs.fast_log(log)
            # A line saying a run finished reaches the log only once the run is stored.
            logs.before_writing(self.states.stored_barrier)
            recent_lines = logs.recent.lines
            self.log_file = logs.log_file
        self.outbox = Outbox(self.db, client, clock)
        self.notifier = Notifier(self.outbox)
        self.runner = Runner(config.max_threads)
        self.settle_each_tick = settle_each_tick
        self.zone = zone
        self._recent_lines = recent_lines
        self._stop = threading.Event()
        self._overrunning: set[str] = set()
        self._kits: dict[str, ModuleKit] = {}
        self._last_prune: datetime | None = None
        self.started_at = clock.now()
        self.next_tick_at: datetime | None = None
        self.console: ConsoleServer | None = None
        if config.console_enabled:
            limits = ConsoleLimits(config.console_max_line, config.console_max_clients,
                                   config.console_idle.total_seconds())
            self.console = ConsoleServer(config.console_host, config.console_port,
                                         Commands(self, zone), limits, config.console_password)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the console; a port that cannot be bound leaves AutoHome running without it."""
        log.info("AutoHome %s starting, tick every %s", __version__, format_duration(self.config.tick))
        self.outbox.start()
        if self.console is None:
            log.info("console disabled (--no-console)")
            return
        host = self.config.console_host
        if not is_loopback(host) and not self.config.console_password:
            log.error(
                "console not started: AUTOHOME_CONSOLE_HOST=%s lets other machines connect, and "
                "telnet sends everything in the clear. Set AUTOHOME_CONSOLE_PASSWORD in .env to "
                "allow it, or use 127.0.0.1; modules keep running", host)
            self.console = None
            return
        try:
            host, port = self.console.start()
        except OSError as exc:
            log.error(
                "console cannot listen on %s:%s (%s); modules keep running without it. "
                "Set AUTOHOME_CONSOLE_PORT (or --port) to a free port such as 2323; "
                "ports below 1024 need administrator rights on Linux",
                self.config.console_host, self.config.console_port, exc.strerror or exc,
            )
            self.console = None
            return
        log.info("console listening on %s:%d", host, port)

    def run(self) -> None:
        """Tick until asked to stop, then shut down. The first tick happens at once."""
        self.start()
        tick = self.config.tick
        anchor = boundary = self.clock.now()
        moved = self.states.clamp_future(boundary)
        if moved:
            log.warning("stored last runs lie in the future (the clock was set back while AutoHome "
                        "was stopped); schedules count from now: %s", ", ".join(moved))
        try:
            while not self._stop.is_set():
                try:
                    self.tick(boundary)
                except Exception:  # a full disk, a vanished folder: log it, keep the schedule
                    log.exception("the tick at %s failed; AutoHome keeps running and tries again "
                                  "at the next tick", boundary.astimezone(self.zone).isoformat())
                if self.settle_each_tick:
                    self.runner.wait_idle(self._stop)
                now = self.clock.now()
                if now < boundary:
                    self._clock_went_back(boundary, now)
                    anchor = now
                deadline = self.next_tick_at = next_tick(anchor, tick, now)
                if self.clock.sleep_until(deadline, self._stop):
                    break
                now = self.clock.now()
                if now < deadline - tick:
                    self._clock_went_back(deadline, now)
                    anchor = boundary = now
                elif now - deadline >= tick:
                    # Asleep (a laptop lid, a stopped process): tick once, at the last boundary.
                    boundary = next_tick(anchor, tick, now) - tick
                    self._log_gap(deadline - tick, boundary)
                else:
                    boundary = deadline
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        """Ask the loop to stop; safe from any thread."""
        if not self._stop.is_set():
            log.info("shutdown requested")
        self._stop.set()
        self.clock.wake()
        self.runner.wake_waiters()

    def shutdown(self) -> None:
        """Stop the console, drop the backlog, give running modules the grace period."""
        self._stop.set()
        if self.console is not None:
            self.console.stop()
        self.outbox.stop()
        grace_s = self.config.shutdown_grace.total_seconds()
        dropped, still_running = self.runner.close(grace_s)
        self.states.close()
        if dropped:
            log.warning("dropped from the backlog at shutdown: %s", ", ".join(dropped))
        if still_running:
            log.warning(
                "still running after the %gs grace period, abandoned: %s "
                "(raise AUTOHOME_SHUTDOWN_GRACE_SECONDS to wait longer)",
                grace_s, ", ".join(still_running),
            )
        log.info("AutoHome stopped")

    def _clock_went_back(self, expected: datetime, now: datetime) -> None:
        moved = self.states.clamp_future(now)
        log.warning("the clock went back by %s; schedules now count from the present%s",
                    format_duration(expected - now), f" ({', '.join(moved)})" if moved else "")

    def _log_gap(self, last_tick: datetime, now: datetime) -> None:
        overdue = [spec.name for spec in self.registry.specs() if self._is_due(spec, now)]
        log.warning("woke after a gap of %s (asleep or suspended); overdue, running once each: %s",
                    format_duration(now - last_tick), ", ".join(overdue) or "none")

    # --- ticking ---------------------------------------------------------------------

    def tick(self, now: datetime) -> list[str]:
        """Reload changed module files, flag overruns, submit every module due at `now`."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("tick at %s", now.astimezone(self.zone).isoformat(timespec="seconds"))
        self.outbox.wake_if_due(now)  # retries follow this clock, virtual time included
        if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            self.outbox.prune(now)
        self.reload()
        self._check_overruns(now)
        due, unseen = [], []
        statuses = self.states.snapshot()
        for spec in self.registry.specs():
            status = statuses.get(spec.name) or ModuleStatus()
            if status.first_seen is None:
                unseen.append(spec.name)
            if self._is_due(spec, now, status):
                due.append(spec)
        self.states.start_tick(now, unseen, [spec.name for spec in due])
        results = {spec.name: self._submit(spec, now, marked=True) for spec in due}
        queued = sum(result is Submission.QUEUED for result in results.values())
        if queued:
            log.info("%d module(s) wait in the backlog: all %d threads are busy",
                     queued, self.runner.max_threads)
        return [name for name, result in results.items()
                if result in (Submission.STARTED, Submission.QUEUED)]

    def reload(self) -> str:
        """Pick up edited, added and removed module files."""
        changes = self.registry.refresh()
        for name in changes.broken:
            entry = self.registry.get(name)
            self._alert(f"{name}.py is broken: {entry.problem if entry else ''}", "AutoHome: module broken")
        if not changes:
            return "no module files changed"
        parts = [f"{label}: {', '.join(names)}" for label, names in (
            ("added", changes.added), ("reloaded", changes.reloaded),
            ("broken", changes.broken), ("removed", changes.removed)) if names]
        return "; ".join(parts)

    def _missing_settings(self, spec: ModuleSpec) -> list[str]:
        return [key for key in spec.requires if not self.config.settings.get(key, "").strip()]

    def _why_off(self, spec: ModuleSpec) -> str:
        """Why a module does not run yet ('' when it has every setting it requires)."""
        missing = self._missing_settings(spec)
        return f"off: set {', '.join(missing)} in .env to turn it on" if missing else ""

    def _is_due(self, spec: ModuleSpec, now: datetime, status: ModuleStatus | None = None) -> bool:
        status = status or self.states.get(spec.name)
        if spec.requires and self._missing_settings(spec):
            return False
        if status.paused or not is_due(spec.schedule, status.last_due_at, status.first_seen or now, now):
            return False
        return not self.runner.is_busy(spec.name)

    def _timeout(self, spec: ModuleSpec) -> timedelta:
        return spec.timeout or self.config.module_timeout

    def _check_overruns(self, now: datetime) -> None:
        for name in self.runner.snapshot().running:
            entry = self.registry.get(name)
            since = self.states.get(name).running_since
            if entry is None or entry.spec is None or since is None or name in self._overrunning:
                continue
            timeout = self._timeout(entry.spec)
            if now - since > timeout:
                self._overrunning.add(name)
                log.warning("module %s is overrunning: running for %s, its TIMEOUT is %s; it still "
                            "holds one of the %d threads", name, format_duration(now - since),
                            format_duration(timeout), self.runner.max_threads)
                self._alert(f"{name} has been running for {format_duration(now - since)} "
                            f"(TIMEOUT {format_duration(timeout)})", "AutoHome: module overrunning")

    def _submit(self, spec: ModuleSpec, due_at: datetime, marked: bool = False) -> Submission:
        result = self.runner.submit(spec.name, lambda: self._execute(spec))
        if result in (Submission.STARTED, Submission.QUEUED) and not marked:
            self.states.mark_due(spec.name, due_at)
        if result is Submission.QUEUED:
            log.debug("module %s queued: all %d threads busy", spec.name, self.runner.max_threads)
        return result

    def _handed(self, spec: ModuleSpec) -> ModuleKit:
        """The module's logger and notify callable, made once per module rather than per run."""
        kit = self._kits.get(spec.name)
        if kit is None:
            module_log = logging.getLogger(f"{MODULE_LOGGER}.{spec.name}")
            kit = self._kits[spec.name] = ModuleKit(module_log, self.notifier.for_module(module_log))
        return kit

    def _given(self, wanted: str, spec: ModuleSpec, kit: ModuleKit) -> object:
        """What `run()` is handed for the parameter named `wanted`."""
        if wanted == "log":
            return kit.log
        if wanted == "notify":
            return kit.notify
        if wanted == "store":
            return ModuleStore(self.db, spec.name)
        return self.config.settings

    def _execute(self, spec: ModuleSpec) -> None:
        """One run of one module, on its own thread; its failure stays its own."""
        kit = self._handed(spec)
        started = self.clock.now()
        self.states.record_start(spec.name, started)
        self._run_log.info("module %s started", spec.name)
        elapsed = stopwatch()
        error = None
        try:
            spec.run(*[self._given(wanted, spec, kit) for wanted in spec.wants])
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module boundary: logged below
            error = f"{type(exc).__name__}: {exc}"
            kit.log.exception("run failed")
        duration_s = elapsed()
        self._overrunning.discard(spec.name)
        previous = self.states.record_finish(spec.name, RunRecord(started, duration_s, error),
                                             self.clock.now())
        was_ok = previous is None or previous.is_ok
        if error is not None and was_ok:
            self._alert(f"{spec.name} failed: {error}", "AutoHome: module failing")
        elif error is None and not was_ok:
            self._alert(f"{spec.name} works again", "AutoHome: module recovered")
        if error is None:
            self._run_log.info("module %s finished in %.3fs", spec.name, duration_s)
        else:
            self._run_log.info("module %s failed after %.3fs: %s", spec.name, duration_s, error)

    def _alert(self, message: str, title: str) -> None:
        """AutoHome's own notice about trouble: on changes only, never on every run."""
        if self.config.notify_on_failure:
            self.notifier.send(log, "autohome", message, title=title)

    # --- what the console asks -------------------------------------------------------

    def notifications(self, limit: int) -> list[OutboxRow]:
        """The newest queued, sent and failed notifications."""
        return self.outbox.listing(limit)

    def notify_test(self, message: str) -> str:
        """Queue a test notification."""
        if self.notifier.send(log, "console", message, title="AutoHome test"):
            if self.outbox.client is None:
                return "kept as undeliverable: set PUSHOVER_TOKEN and PUSHOVER_USER to send it"
            return "test notification queued; see 'notifications'"
        return "not queued: the message is invalid (see the log)"

    def views_version(self) -> tuple[int, ...]:
        """Changes whenever anything `module_views` shows changes."""
        return (self.states.version, self.runner.version, self.registry.version, len(self._overrunning))

    def module_views(self) -> list[ModuleView]:
        """Every module as the console shows it."""
        snapshot = self.runner.snapshot()
        now = self.clock.now()
        views = []
        for entry in self.registry.entries():
            status = self.states.get(entry.name)
            spec = entry.spec
            if spec is None:
                views.append(ModuleView(entry.name, "broken", "-", status, None,
                                        problem=entry.problem, path=str(entry.path)))
                continue
            off = self._why_off(spec)
            if entry.name in snapshot.running:
                state = "overrun" if entry.name in self._overrunning else "running"
            elif off:
                state = "off"
            elif entry.name in snapshot.queued:
                state = "queued"
            elif status.paused:
                state = "paused"
            else:
                state = "idle"
            next_run = spec.schedule.next_run(status.last_due_at, status.first_seen or now)
            views.append(ModuleView(
                entry.name, state, spec.schedule.describe(), status, next_run,
                description=spec.description, problem=off or entry.problem, path=str(entry.path),
                timeout=self._timeout(spec),
            ))
        return views

    def recent_lines(self, name: str, count: int) -> list[str]:
        """The module's latest log lines."""
        return self._recent_lines(name, count)

    def status(self) -> StatusView:
        """How the daemon is doing, for the console's `status`."""
        snapshot = self.runner.snapshot()
        entries = self.registry.entries()
        broken = sum(not entry.is_runnable for entry in entries)
        return StatusView(
            started_at=self.started_at, now=self.clock.now(), tick=self.config.tick,
            next_tick=self.next_tick_at, running=len(snapshot.running),
            max_threads=snapshot.max_threads, queued=len(snapshot.queued),
            drainer_alive=snapshot.drainer_alive, modules=len(entries) - broken, broken=broken,
            outbox=self.outbox.counts(), quota=self.outbox.quota,
        )

    def log_tail(self, count: int) -> list[str]:
        """The last `count` lines of current.log."""
        if self.log_file is None or not self.log_file.is_file():
            return []
        return tail_lines(self.log_file, count)

    def history(self, name: str, count: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        return self.states.history(name, count)

    def _runnable(self, name: str) -> ModuleSpec | str:
        entry = self.registry.get(name)
        if entry is None:
            return f"no module named {name!r}"
        if entry.spec is None:
            return f"{name} is broken: fix {entry.path} first ({entry.problem})"
        off = self._why_off(entry.spec)
        return f"{name} is {off}" if off else entry.spec

    def run_now(self, name: str) -> str:
        """Run a module at once, through the same thread cap and backlog."""
        spec = self._runnable(name)
        if isinstance(spec, str):
            return spec
        log.info("module %s run by hand from the console", name)
        result = self._submit(spec, self.clock.now())
        if result is Submission.STARTED:
            return f"{name} started"
        if result is Submission.QUEUED:
            return f"{name} queued: all {self.runner.max_threads} threads are busy"
        return f"{name} not started: {result.value}"

    def set_paused(self, name: str, paused: bool) -> str:
        """Pause or resume a module's scheduled runs."""
        spec = self._runnable(name)
        if isinstance(spec, str):
            return spec
        if self.states.get(name).paused == paused:
            return f"{name} is already {'paused' if paused else 'running on schedule'}"
        self.states.set_paused(name, paused)
        log.info("module %s %s from the console", name, "paused" if paused else "resumed")
        return f"{name} {'paused' if paused else 'resumed'}"
