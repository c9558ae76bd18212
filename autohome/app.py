"""Main: wires the parts together, ticks on the clock, and shuts down cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from autohome import __version__
from autohome.clock import Clock, stopwatch
from autohome.config import Config
from autohome.console import Commands, ConsoleServer, ModuleView
from autohome.loader import BrokenModule, ModuleSpec
from autohome.logs import MODULE_LOGGER
from autohome.notify import Notifier
from autohome.scheduler import Runner, Submission, is_due, next_due, next_tick
from autohome.state import ModuleStates, RunRecord

log = logging.getLogger("autohome.main")


class Main:
    """The daemon: every tick, start the modules that are due; serve the console meanwhile."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        notifier: Notifier,
        modules: list[ModuleSpec | BrokenModule],
        recent_lines: Callable[[str, int], list[str]] = lambda name, count: [],
        settle_each_tick: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self.notifier = notifier
        self.modules = {item.name: item for item in sorted(modules, key=lambda m: m.name)}
        self.states = ModuleStates()
        self.runner = Runner(config.max_threads)
        self.settle_each_tick = settle_each_tick
        self._recent_lines = recent_lines
        self._stop = threading.Event()
        self.console: ConsoleServer | None = None
        if config.console_enabled:
            self.console = ConsoleServer(
                config.console_host, config.console_port, Commands(self)
            )

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the console; a port that cannot be bound leaves AutoHome running without it."""
        log.info("AutoHome %s starting, tick every %s", __version__, self.config.tick)
        if self.console is None:
            log.info("console disabled (--no-console)")
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
        anchor = boundary = self.clock.now()
        try:
            while not self._stop.is_set():
                self.tick(boundary)
                if self.settle_each_tick:
                    self.runner.wait_idle(self._stop)
                now = self.clock.now()
                if now < boundary:
                    log.warning("the clock went back %s; ticking from now on", boundary - now)
                    anchor = now
                boundary = next_tick(anchor, self.config.tick, now)
                if self.clock.sleep_until(boundary, self._stop):
                    break
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
        grace_s = self.config.shutdown_grace.total_seconds()
        dropped, still_running = self.runner.close(grace_s)
        if dropped:
            log.warning("dropped from the backlog at shutdown: %s", ", ".join(dropped))
        if still_running:
            log.warning(
                "still running after the %gs grace period, abandoned: %s "
                "(raise AUTOHOME_SHUTDOWN_GRACE_SECONDS to wait longer)",
                grace_s, ", ".join(still_running),
            )
        log.info("AutoHome stopped")

    # --- ticking ---------------------------------------------------------------------

    def tick(self, now: datetime) -> list[str]:
        """Submit every module that is due at `now`; return their names."""
        log.debug("tick at %s", now.astimezone().isoformat(timespec="seconds"))
        submitted = []
        for spec in self._specs():
            status = self.states.get(spec.name)
            if status.paused or not is_due(spec.interval, status.last_due_at, now):
                continue
            if self._submit(spec, now) in (Submission.STARTED, Submission.QUEUED):
                submitted.append(spec.name)
        return submitted

    def _specs(self) -> list[ModuleSpec]:
        return [item for item in self.modules.values() if isinstance(item, ModuleSpec)]

    def _submit(self, spec: ModuleSpec, due_at: datetime) -> Submission:
        if self.runner.is_busy(spec.name):
            return Submission.BUSY
        result = self.runner.submit(spec.name, lambda: self._execute(spec))
        if result in (Submission.STARTED, Submission.QUEUED):
            self.states.mark_due(spec.name, due_at)
        if result is Submission.QUEUED:
            log.info("module %s queued: all %d threads busy", spec.name, self.runner.max_threads)
        return result

    def _execute(self, spec: ModuleSpec) -> None:
        """One run of one module, on its own thread; its failure stays its own."""
        module_log = logging.getLogger(f"{MODULE_LOGGER}.{spec.name}")
        started = self.clock.now()
        self.states.record_start(spec.name, started)
        log.info("module %s started", spec.name)
        elapsed = stopwatch()
        error = None
        try:
            spec.run(module_log, self.notifier.for_module(module_log))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module boundary: logged below
            error = f"{type(exc).__name__}: {exc}"
            module_log.exception("run failed")
        duration_s = elapsed()
        self.states.record_finish(spec.name, RunRecord(started, duration_s, error))
        if error is None:
            log.info("module %s finished in %.3fs", spec.name, duration_s)
        else:
            log.info("module %s failed after %.3fs: %s", spec.name, duration_s, error)

    # --- what the console asks -------------------------------------------------------

    def module_views(self) -> list[ModuleView]:
        """Every module as the console shows it."""
        snapshot = self.runner.snapshot()
        now = self.clock.now()
        views = []
        for name, item in self.modules.items():
            status = self.states.get(name)
            if isinstance(item, BrokenModule):
                views.append(ModuleView(name, "broken", None, status, None,
                                        problem=item.reason, path=str(item.path)))
                continue
            if name in snapshot.running:
                state = "running"
            elif name in snapshot.queued:
                state = "queued"
            elif status.paused:
                state = "paused"
            else:
                state = "idle"
            views.append(ModuleView(
                name, state, item.interval, status,
                next_due(item.interval, status.last_due_at, now),
                description=item.description, path=str(item.path),
            ))
        return views

    def recent_lines(self, name: str, count: int) -> list[str]:
        """The module's latest log lines."""
        return self._recent_lines(name, count)

    def run_now(self, name: str) -> str:
        """Run a module at once, through the same thread cap and backlog."""
        item = self.modules.get(name)
        if isinstance(item, BrokenModule):
            return f"{name} is broken and cannot run: {item.reason}"
        if item is None:
            return f"no module named {name!r}"
        log.info("module %s run by hand from the console", name)
        result = self._submit(item, self.clock.now())
        if result is Submission.STARTED:
            return f"{name} started"
        if result is Submission.QUEUED:
            return f"{name} queued: all {self.runner.max_threads} threads are busy"
        return f"{name} not started: {result.value}"

    def set_paused(self, name: str, paused: bool) -> str:
        """Pause or resume a module's scheduled runs."""
        item = self.modules.get(name)
        if isinstance(item, BrokenModule):
            return f"{name} is broken: fix {item.path} first ({item.reason})"
        if item is None:
            return f"no module named {name!r}"
        was_paused = self.states.get(name).paused
        if was_paused == paused:
            return f"{name} is already {'paused' if paused else 'running on schedule'}"
        self.states.set_paused(name, paused)
        log.info("module %s %s from the console", name, "paused" if paused else "resumed")
        return f"{name} {'paused' if paused else 'resumed'}"
