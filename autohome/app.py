"""Main, the tick loop, and `build()`, the one place where AutoHome's parts are wired together."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo

from autohome import __version__
from autohome.catalog.loader import BrokenModule, ModuleSpec
from autohome.catalog.registry import TICK_WAIT_S, ModuleRegistry
from autohome.clock import Clock
from autohome.config import CONSOLE_PORT, FALLBACK_CONSOLE_PORT, Config, LiveSettings, is_loopback
from autohome.console.server import ConsoleServer
from autohome.console.session import ConsoleLimits
from autohome.control.commands import Commands
from autohome.control.panel import ControlPanel
from autohome.durations import format_duration
from autohome.logs.setup import LogSetup
from autohome.logs.tree import get_logger
from autohome.logs.writer import RunLines
from autohome.loop import LoopTimes, StopRequest, Wake, classify_wake, last_tick, next_tick, wall_clock_anchor
from autohome.notifications.channels import Channel, PushoverChannel
from autohome.notifications.damping import QuietHours
from autohome.notifications.notifier import Notifier
from autohome.notifications.outbox import Outbox
from autohome.notifications.pings import Pinger
from autohome.notifications.pushover import PushoverClient
from autohome.revision import Revision
from autohome.running.admission import Admission
from autohome.running.capture import OutputCapture
from autohome.running.conditions import Machine
from autohome.running.crashes import CrashIsolation
from autohome.running.deadlines import Deadlines
from autohome.running.descriptors import OwnDescriptors
from autohome.running.dispatch import Dispatcher
from autohome.running.executor import RunExecutor, RunPolicy
from autohome.running.runner import Runner
from autohome.storage.db import Database
from autohome.storage.life import LifeLog
from autohome.storage.sleeps import KEEP as KEEP_SLEEPS
from autohome.storage.sleeps import SleepLog
from autohome.storage.state import ModuleStates
from autohome.storage.watch import StorageWatch
from autohome.web.server import StatusServer, start_web

log = get_logger("autohome.main")

class Main:
    """The daemon: every tick, start the modules that are due; everything else is a part."""

    def __init__(self, config: Config, clock: Clock, registry: ModuleRegistry, executor: RunExecutor,
                 runner: Runner, states: ModuleStates, outbox: Outbox, notifier: Notifier,
                 panel: ControlPanel, stop: StopRequest, times: LoopTimes, storage: StorageWatch,
                 descriptors: OwnDescriptors, settings: Mapping[str, str], dispatch: Dispatcher,
                 console: ConsoleServer | None = None, web: StatusServer | None = None,
                 settle_each_tick: bool = False, zone: tzinfo = timezone.utc,
                 ports_may_move: tuple[bool, bool] = (False, False), life: LifeLog | None = None,
                 pinger: Pinger | None = None) -> None:
        self.config, self.clock, self.zone, self.stop, self.times = config, clock, zone, stop, times
        self.registry, self.executor, self.runner, self.states = registry, executor, runner, states
        self.outbox, self.notifier, self.panel = outbox, notifier, panel  # notifier: AutoHome's alerts
        self.storage, self.descriptors = storage, descriptors
        self.settings, self.dispatch = settings, dispatch  # settings: read again by `reload`
        self.gap = ""  # why the next tick comes late: "stopped" (the first), "asleep" (after a wake)
        self.console, self.web = console, web
        self.settle_each_tick = settle_each_tick  # test mode: time moves once a tick's runs are over
        # Test mode beside a running AutoHome: a taken console (page) port gives way to a free one.
        self.ports_may_move = ports_may_move
        self.life = life or LifeLog(states.db)  # started, alive, a clean stop: every gap explained
        self.pinger = pinger or Pinger()  # AUTOHOME_PING_URL: at most once a minute, when online

    def start(self) -> None:
        """Start the notification sender and the console, then load the modules (the console
        answers while they import)."""
        log.info("AutoHome %s starting, tick every %s", __version__, format_duration(self.config.tick))
        self.outbox.start()
        self.console = start_console(self.console, self.config, any_port_if_taken=self.ports_may_move[0])
        if self.console is not None:
            self.descriptors.add("the console's socket", self.console.fileno())
        self.web = start_web(self.web, any_port_if_taken=self.ports_may_move[1])
        if not self.registry.is_loaded:
            self.registry.load()

    def run(self, crash_reported: bool = False) -> None:
        """Tick until asked to stop, then shut down. The first tick happens at once, for the
        wall-clock boundary just passed; the next ones on the boundaries (loop.wall_clock_anchor)."""
        self.start()
        tick = self.config.tick
        started = self.clock.now()
        explain_gap(self.life, self.times, self.notifier.alert, started, self.zone, alerted=crash_reported)
        anchor = boundary = wall_clock_anchor(started, tick, self.zone)
        moved = self.states.clamp_future(started)
        if moved and self.settle_each_tick:  # virtual time of an earlier test session ran past now
            log.info("test mode: the last test session's virtual time ran past where this one starts; "
                     "schedules count from now: %s", ", ".join(moved))
        elif moved:
            log.warning("stored last runs lie in the future (the clock was set back while AutoHome "
                        "was stopped); schedules count from now: %s", ", ".join(moved))
        self.gap = "stopped"  # the first tick's catch-ups were missed while AutoHome was not running
        try:
            while not self.stop.is_requested:
                self._tick_safely(boundary)
                if not self.descriptors.check(", ".join(self.runner.snapshot().running) or None):
                    break
                now = self.clock.now()
                if now < boundary:
                    self._clock_went_back(boundary, now)
                # The boundary after the one just ticked: a clock set forward during the tick is
                # a gap seen at once (the wait ends at once), as it is during the wait.
                deadline = self.times.next_tick_at = next_tick(anchor, tick, min(now, boundary))
                if _wait_for_tick(self.clock, deadline, self.stop, self.descriptors):
                    break
                now = self.clock.now()
                wake = classify_wake(deadline, now, tick)
                if wake is Wake.WENT_BACK:
                    self._clock_went_back(deadline, now)
                    boundary = last_tick(anchor, tick, now)
                elif wake is Wake.SLEPT:  # tick once, at the last boundary passed
                    boundary = last_tick(anchor, tick, now)
                    self._log_gap(deadline - tick, boundary)
                else:
                    boundary = deadline
        finally:
            self.shutdown()

    def _tick_safely(self, now: datetime) -> None:
        try:
            self.tick(now)
        except Exception:  # a full disk, a vanished folder: log it, keep the schedule
            log.exception("the tick at %s failed; AutoHome keeps running and tries again at the "
                          "next tick", now.astimezone(self.zone).isoformat())
        if self.settle_each_tick:  # test mode: time moves once the tick's runs are over (or overrunning)
            self.runner.wait_for(lambda now: self.stop.is_requested or (not now.queued and all(
                self.executor.is_overrunning(name) for name in now.running)), None)
            self.states.flush_lines()  # and their "finished" lines logged: they come above the prompt

    def request_stop(self) -> None:
        """Ask the loop to stop; safe from any thread."""
        self.stop.request()

    def shutdown(self) -> None:
        """Stop the console, drop the backlog, give running modules the grace period."""
        self.stop.event.set()
        if self.console is not None:
            self.console.stop(0.5 if self.descriptors.lost else 5.0)
        if self.web is not None:
            self.web.stop()
        self.outbox.stop()
        self.pinger.stop()
        grace_s = self.config.shutdown_grace.total_seconds()
        dropped, still_running = self.executor.close(grace_s)
        if not self.stop.exit_code:
            self.life.end(self.clock.now())  # a clean stop, said at the next start
        self.states.close(0.5 if self.descriptors.lost else 5.0)  # a database closed under it takes no more
        if dropped:
            log.warning("dropped from the backlog at shutdown: %s", ", ".join(dropped))
        if still_running:
            log.warning("still running after the %gs grace period, abandoned: %s "
                        "(raise AUTOHOME_SHUTDOWN_GRACE_SECONDS to wait longer)",
                        grace_s, ", ".join(still_running))
        log.info("AutoHome stopped")

    def _clock_went_back(self, expected: datetime, now: datetime) -> None:
        moved = self.states.clamp_future(now)
        log.warning("the clock went back by %s; schedules now count from the present%s",
                    format_duration(expected - now), f" ({', '.join(moved)})" if moved else "")

    def _log_gap(self, last_tick: datetime, now: datetime) -> None:
        self.times.slept(last_tick, now)
        self.gap = "asleep"  # the next tick's catch-up follows a wake (running/admission.py)
        overdue = self.dispatch.due(now)
        log.warning("woke after a gap of %s (asleep or suspended); overdue, running once each: %s",
                    format_duration(now - last_tick), ", ".join(spec.name for spec in overdue) or "none")

    def tick(self, now: datetime) -> list[str]:
        """Reload changed module files, then start every module due at `now` that may start."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("tick at %s", now.astimezone(self.zone).isoformat(timespec="seconds"))
        self.storage.check(now)  # a database that cannot be written is said once, and runs go on
        self.life.beat(now)
        self.pinger.alive(now)
        self.notifier.tick(now)  # summaries of what the hourly limit folded
        self.registry.refresh(TICK_WAIT_S)  # imports that take longer join a later tick
        gap, self.gap = self.gap, ""
        return self.dispatch.tick(now, gap)


def explain_gap(life: LifeLog, times: LoopTimes, alert: Callable[[str, str], None], now: datetime,
                zone: tzinfo, alerted: bool = False) -> None:
    """Say how the previous run of AutoHome ended, keep the gap for the timeline, and begin
    this one: a clean stop is information; without one (a crash, kill -9, a power loss) it is
    a warning and, unless a crash report said so already, one notification."""
    last = life.previous()
    life.begin(now)
    since = last.stopped or last.alive or last.started
    if since is None or since >= now:  # the first start, or a test session's virtual time
        return
    shown = since.astimezone(zone).isoformat(sep=" ", timespec="seconds")
    if last.stopped is not None:
        times.slept(since, now, "stopped")
        log.info("AutoHome was stopped at %s (a clean stop), %s ago", shown, format_duration(now - since))
        return
    times.slept(since, now, "crashed")
    log.warning("AutoHome stopped without a clean stop (a crash, kill -9 or a power loss): it was last "
                "alive at %s, %s ago", shown, format_duration(now - since))
    if not alerted:
        alert(f"AutoHome stopped without a clean stop: last alive at {shown}; it runs again",
              "AutoHome: stopped unexpectedly")


def _wait_for_tick(clock: Clock, deadline: datetime, stop: StopRequest, descriptors: OwnDescriptors) -> bool:
    """The loop's wait; True when it must stop: asked to, or its own sockets were closed under
    it (descriptors.py)."""
    try:
        return clock.sleep_until(deadline, stop.event)
    except OSError:
        if descriptors.check():
            raise
        return True


def start_console(console: ConsoleServer | None, config: Config,
                  any_port_if_taken: bool = False) -> ConsoleServer | None:
    """Start the console; a refused host or a port that cannot be bound leaves AutoHome
    running without it (None). With `any_port_if_taken` (test mode, beside a running
    AutoHome) a taken port is replaced by a free one, said in the log."""
    if console is None:
        log.info("console disabled (--no-console)")
        return None
    if not is_loopback(config.console_host) and not config.console_password:
        log.error(
            "console not started: AUTOHOME_CONSOLE_HOST=%s lets other machines connect, and "
            "telnet sends everything in the clear. Set AUTOHOME_CONSOLE_PASSWORD in .env to "
            "allow it, or use 127.0.0.1; modules keep running", config.console_host)
        return None
    try:
        try:
            host, port = console.start()
        except PermissionError:
            if config.console_port_given or console.port != CONSOLE_PORT:
                raise
            console.port = FALLBACK_CONSOLE_PORT  # the design's port 23 needs rights most users lack
            host, port = _start(console, any_port_if_taken)
            log.info("console on %s:%d: port %d needs administrator rights", host, port, CONSOLE_PORT)
        except OSError as exc:
            if not (any_port_if_taken and exc.errno == errno.EADDRINUSE):
                raise
            host, port = _start_on_any_free_port(console)
    except OSError as exc:
        log.error(
            "console cannot listen on %s:%s (%s); modules keep running without it. "
            "Set AUTOHOME_CONSOLE_PORT (or --port) to a free port such as 2323; "
            "ports below 1024 need administrator rights on Linux",
            config.console_host, config.console_port, exc.strerror or exc)
        return None
    log.info("console listening on %s:%d", host, port)
    return console


def _start(console: ConsoleServer, any_port_if_taken: bool) -> tuple[str, int]:
    try:
        return console.start()
    except OSError as exc:
        if not (any_port_if_taken and exc.errno == errno.EADDRINUSE):
            raise
        return _start_on_any_free_port(console)


def _start_on_any_free_port(console: ConsoleServer) -> tuple[str, int]:
    """Test mode beside a running AutoHome: its console takes any free port instead."""
    taken, console.port = console.port, 0
    try:
        return console.start()
    except OSError:
        console.port = taken
        raise
    finally:
        if console.port == 0:
            log.info("test mode: console port %d is taken (by the AutoHome that runs?); this one "
                     "takes a free port", taken)


def build(
    config: Config,
    clock: Clock,
    modules: list[ModuleSpec | BrokenModule] | None = None,
    db: Database | None = None,
    client: PushoverClient | None = None,
    channels: Sequence[Channel] | None = None,
    logs: LogSetup | None = None,
    zone: tzinfo = timezone.utc,
    settle_each_tick: bool = False,
    run_clock: Clock | None = None,
    capture: OutputCapture | None = None,
    send_notifications: bool = True,
    crash_isolation: CrashIsolation | None = None,
    reread: Callable[[], Config] | None = None,
    ports_may_move: tuple[bool, bool] = (False, False),
    machine: Machine | None = None,
) -> Main:
    """AutoHome's parts, made and wired; nothing is started. The cli, the tests and the
    benchmarks all build the daemon here. `modules` are given modules (tests, benchmarks);
    without them the modules are config.modules_dir's files, loaded at start. `run_clock`
    times each run's TIMEOUT (the real clock in test mode, where `clock` is virtual);
    `capture` splits what modules print; without `send_notifications` (test mode)
    notifications are kept and shown, never sent; `reread` reads .env again (the console's
    `reload`); `machine` says whether the network and mains power are there (tests fake it)."""
    revision = Revision()  # one revision for everything the console shows
    settings = LiveSettings(config.settings)  # what modules see; `reload` reads .env again
    db = db if db is not None else Database.in_memory()
    # Each run's "started" and "finished" lines go straight onto the log's queue.
    lines = RunLines(get_logger("autohome.main"), logs)
    states = ModuleStates(db, revision=revision, announce=lines.emit)
    if channels is None:
        channels = [PushoverChannel(client)] if client is not None else []
    outbox = Outbox(db, channels, clock, is_test_mode=not send_notifications)
    quiet = QuietHours(config.quiet_hours, zone) if config.quiet_hours else None
    notifier = Notifier(outbox, send_alerts=config.notify_on_failure, quiet=quiet,
                        max_per_hour=config.notify_max_per_hour)
    runner = Runner(config.max_threads, revision)
    policy = RunPolicy(config.module_timeout, config.isolation, config.stop_grace.total_seconds())
    stop = StopRequest()
    descriptors = OwnDescriptors(on_lost=lambda: stop.request(exit_code=1))
    # After each thread run: what the module did to logging, and to AutoHome's descriptors.
    guard = logs.guard if logs is not None else None

    def after_run(name: str) -> None:
        if guard is not None:
            guard.check(name)
        if capture is not None:
            capture.check(name)
        descriptors.check(name)

    timers = Deadlines(clock)  # retries, jittered starts, the wait for the network after a wake
    machine = machine or Machine(config.network_probe)
    pinger = Pinger(config.ping_url, machine.is_online)  # AutoHome's and the modules' PING_URLs
    executor = RunExecutor(runner, states, notifier, clock, db, settings, policy, lines,
                           timers, run_clock, capture, after_run=after_run,
                           crash_isolation=crash_isolation, pinger=pinger)
    if modules is None:
        registry = ModuleRegistry(config.modules_dir, zone, revision,
                                  import_timeout_s=config.import_timeout.total_seconds(),
                                  after_import=guard.check if guard is not None else None,
                                  on_change=executor.prepare, alert=notifier.alert)
    else:
        registry = ModuleRegistry.of(modules, revision, on_change=executor.prepare)
        executor.prepare(registry.specs())  # given modules are loaded already
    admission = Admission(machine, states, clock, timers, executor.submit_due, config.tick,
                          config.wake_network_wait)

    def cannot_schedule(spec: ModuleSpec, exc: Exception) -> None:  # broken; the others go on
        registry.mark_broken(spec.name, f"its next run cannot be computed: {type(exc).__name__}: {exc}")

    dispatch = Dispatcher(registry.specs, states, runner, executor, admission, settings, cannot_schedule)
    stop.on_request(clock.wake)
    stop.on_request(runner.wake_waiters)
    sleeps = SleepLog(db)
    times = LoopTimes(clock.now(), remember=sleeps.record)
    times.sleeps.extend(sleeps.since(times.started_at - KEEP_SLEEPS))
    panel = ControlPanel(registry, executor, runner, states, outbox, notifier, db, clock, settings,
                         config.tick, times, stop, zone, reread, admission,
                         recent_lines=logs.recent.lines if logs else lambda name, count: [],
                         log_file=logs.log_file if logs else None,
                         follow_log=logs.followers.follow if logs else lambda: None)
    storage = StorageWatch(db, notifier.alert, zone, states.runs.retry_now,
                           prune=None if outbox.can_send else outbox.prune_if_due)
    console = None
    if config.console_enabled:
        limits = ConsoleLimits(config.console_max_line, config.console_max_clients,
                               config.console_idle.total_seconds(),
                               login_timeout_s=config.console_login.total_seconds())
        console = ConsoleServer(config.console_host, config.console_port, Commands(panel, zone),
                                limits, config.console_password)
    web = None
    if config.web_enabled:
        web = StatusServer(panel, zone, config.web_host, config.web_port, config.console_password)
    return Main(config, clock, registry, executor, runner, states, outbox, notifier, panel, stop, times,
                storage, descriptors, settings, dispatch, console, web, settle_each_tick, zone,
                ports_may_move, LifeLog(db), pinger)
