"""One run of one module: what it is handed, where it runs (a thread, or a child process
that can be stopped), what is recorded, retries, and AutoHome's alerts about it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from autohome.catalog.loader import ModuleKit, ModuleSpec, say_memory
from autohome.clock import Clock, stopwatch
from autohome.durations import format_duration
from autohome.logs.setup import MODULE_LOGGER
from autohome.logs.tree import get_logger
from autohome.logs.writer import RunLines
from autohome.notifications.notifier import Notifier
from autohome.notifications.pings import Pinger
from autohome.running.capture import OutputCapture, RunOutput
from autohome.running.crashes import CrashIsolation
from autohome.running.deadlines import Deadlines, Watchdog, WatchedRun
from autohome.running.runner import Runner, Submission
from autohome.storage.db import Database
from autohome.storage.state import ModuleStates, Outcome, RunRecord
from autohome.storage.store import ModuleStore
from autohome.text import cut

if TYPE_CHECKING:
    from autohome.running.isolation import IsolatedRun

log = get_logger("autohome.main")

MAX_ERROR_CHARS = 2000  # of a run's error, as stored and shown
PING_LINES = 200  # of a run's output, sent with its end ping
STOP_HINT = "set ISOLATE = True in its file to let AutoHome stop it"


class _Run:
    """One run on its way: made when it is submitted, filled in just before its thread starts."""

    __slots__ = ("spec", "attempt", "kit", "started", "elapsed", "watched", "output", "ping")

    def __init__(self, spec: ModuleSpec, attempt: int) -> None:
        self.spec = spec
        self.attempt = attempt
        self.kit: ModuleKit | None = None
        self.started = datetime.min
        self.elapsed: Callable[[], float] | None = None
        self.watched: WatchedRun | None = None
        self.output: RunOutput | None = None
        self.ping = ""  # the run's id for its PING_URL's end ping


class RunPolicy(NamedTuple):
    """The settings every run follows unless its module says otherwise."""

    default_timeout: timedelta = timedelta(minutes=10)
    isolation: str = "thread"  # or "process"
    stop_grace_s: float = 5.0


class RunExecutor:
    """Starts runs through the Runner and carries each one out on its thread; a module's
    failure stays its own."""

    def __init__(self, runner: Runner, states: ModuleStates, notifier: Notifier, clock: Clock,
                 db: Database, settings: Mapping[str, str], policy: RunPolicy | None = None,
                 lines: RunLines | None = None, timers: Deadlines | None = None,
                 run_clock: Clock | None = None, capture: OutputCapture | None = None,
                 after_run: Callable[[str], None] | None = None,
                 crash_isolation: CrashIsolation | None = None, pinger: Pinger | None = None) -> None:
        self.runner = runner
        self.states = states
        self.notifier = notifier
        self.clock = clock
        self.db = db
        self.settings = settings
        self.policy = policy or RunPolicy()
        # Retries and jittered starts follow the daemon's clock (virtual in test mode); a run's
        # TIMEOUT is watched on the clock that times runs, real time even in test mode.
        self.timers = timers or Deadlines(clock)
        self.watchdog = Watchdog(run_clock or clock, self._timed_out)
        self.capture = capture or OutputCapture()
        self.outputs: dict[str, Iterable[str]] = {}  # each module's last run's output
        self._kits: dict[str, ModuleKit] = {}
        self._isolated: dict[str, IsolatedRun] = {}  # isolated runs going on now (isolation.py)
        self._current: dict[str, _Run] = {}  # every run going on now, from just before its thread starts
        self._lines = lines or RunLines(log)
        # Told each module's name after its thread run (logs.LoggingGuard.check: what it did to logging).
        self._after_run = after_run or (lambda name: None)
        self.crash_isolation = crash_isolation or CrashIsolation(db)  # modules that crashed AutoHome
        self.pinger = pinger or Pinger()  # a module's PING_URL, pinged at each run's start and end

    def submit(self, spec: ModuleSpec, attempt: int = 1) -> Submission:
        """Run the module on a thread of its own, or queue it while all threads are busy."""
        run = _Run(spec, attempt)
        result = self.runner.submit(spec.name, lambda: self._execute(run), lambda: self._begin(run))
        if result is Submission.QUEUED:
            log.debug("module %s queued: all %d threads busy", spec.name, self.runner.max_threads)
        return result

    def submit_due(self, spec: ModuleSpec, now: datetime) -> Submission:
        """A scheduled run: now, or, with JITTER, at a random moment within it."""
        if not spec.jitter:
            return self.submit(spec)
        import random  # only for modules with JITTER: half a millisecond of start-up

        delay = timedelta(seconds=random.uniform(0, spec.jitter.total_seconds()))  # noqa: S311 - spreading, not secrets
        self.timers.at(now + delay, lambda: self._submit_later(spec), f"the jittered start of {spec.name}")
        return Submission.DELAYED

    def _submit_later(self, spec: ModuleSpec, attempt: int = 1) -> None:
        result = self.submit(spec, attempt)
        if result not in (Submission.STARTED, Submission.QUEUED):
            log.info("module %s not started: %s", spec.name, result.value)

    def timeout(self, spec: ModuleSpec) -> timedelta:
        """The module's TIMEOUT, or AUTOHOME_MODULE_TIMEOUT."""
        return spec.timeout or self.policy.default_timeout

    def is_isolated(self, spec: ModuleSpec) -> bool:
        """Whether the module runs in a child process: ISOLATE, else AUTOHOME_ISOLATION, but
        always after it crashed AutoHome twice in a row (crashes.py)."""
        if spec.name in self.crash_isolation.names:
            return True
        return spec.isolate if spec.isolate is not None else self.policy.isolation == "process"

    def kit(self, spec: ModuleSpec) -> ModuleKit:
        """What the module's run() may ask for, made once per module rather than per run."""
        kit = self._kits.get(spec.name)
        if kit is None:
            kit = self._kits[spec.name] = self._make_kit(spec.name)
        return kit

    def prepare(self, specs: Iterable[ModuleSpec]) -> None:
        """Make the kits of the modules just loaded, forget those of modules gone: a first run
        then costs what every later one does (see docs/performance.md)."""
        kits: dict[str, ModuleKit] = {}
        for spec in specs:
            kit = self._kits.get(spec.name)
            if kit is None:
                say_memory(spec, self.is_isolated(spec))
                kit = self._make_kit(spec.name)
            kits[spec.name] = kit
        self._kits = kits
        for name in self.crash_isolation.forget_changed({spec.name: spec.path for spec in specs}):
            log.info("module %s changed since it crashed AutoHome: it runs as it says again", name)

    def _make_kit(self, name: str) -> ModuleKit:
        module_log = get_logger(f"{MODULE_LOGGER}.{name}")
        return ModuleKit(module_log, self.notifier.for_module(module_log), ModuleStore(self.db, name),
                         self.settings)

    def _begin(self, run: _Run) -> None:
        """A run's bookkeeping before its thread starts, on the thread that starts it."""
        spec = run.spec
        run.kit = self.kit(spec)
        run.started = self.clock.now()
        self._lines.debug("module %s started", spec.name, thread_name=f"module:{spec.name}")
        run.elapsed = stopwatch()
        run.watched = self.watchdog.started(spec.name, self.watchdog.clock.now() + self.timeout(spec), spec)
        run.output = RunOutput(run.kit.log)
        if spec.ping_url:
            run.ping = self.pinger.started(spec.ping_url)
        self._current[spec.name] = run

    def _execute(self, run: _Run) -> None:
        """One run of one module, on its own thread."""
        spec, kit, watched, output = run.spec, run.kit, run.watched, run.output
        assert kit is not None and watched is not None and output is not None and run.elapsed is not None
        self.capture.begin(output)
        try:
            if self.is_isolated(spec):
                error, outcome = self._run_isolated(spec, kit, output)
            else:
                error, outcome = self._run_in_thread(spec, kit), None
                self._after_run(spec.name)
        finally:
            self.capture.end(output)
            self.watchdog.ended(watched)
        self.outputs[spec.name] = output.lines
        record = RunRecord(run.started, run.elapsed(), error,
                           outcome or (Outcome.OVERRUN if watched.overran else None))
        if run.ping:
            self.pinger.ended(spec.ping_url, run.ping, error is None, list(output.lines)[-PING_LINES:])
        try:
            self._finish(spec, record, run.attempt)
        finally:
            self._current.pop(spec.name, None)

    def isolated_why(self, name: str) -> str:
        """Why the module runs in a child process though its file does not say so ("": it
        does not, or its file says so)."""
        return self.crash_isolation.reason(name) or ""

    def last_output(self, name: str, count: int) -> list[str]:
        """The last `count` lines its last run printed."""
        return list(self.outputs.get(name, ()))[-count:]

    def current(self, name: str) -> tuple[datetime, bool] | None:
        """When the module's run going on now started, and whether it is past its TIMEOUT."""
        run = self._current.get(name)
        if run is None or run.watched is None:
            return None
        return run.started, run.watched.overran

    def is_overrunning(self, name: str) -> bool:
        """Whether the module's run going on now is past its TIMEOUT (a thread run: it cannot be stopped)."""
        current = self.current(name)
        return current is not None and current[1]

    def _run_in_thread(self, spec: ModuleSpec, kit: ModuleKit) -> str | None:
        try:
            spec.run(*[getattr(kit, wanted) for wanted in spec.wants])
        except BaseException as exc:  # noqa: BLE001 - the module boundary: even Ctrl-C or exit is its own
            # The traceback starts in the module: this frame of AutoHome's is no help to its author.
            trace = exc.__traceback__
            kit.log.error("run failed", exc_info=(type(exc), exc, trace.tb_next if trace else None))
            return cut(f"{type(exc).__name__}: {exc}", MAX_ERROR_CHARS)
        return None

    def _run_isolated(self, spec: ModuleSpec, kit: ModuleKit,
                      output: RunOutput) -> tuple[str | None, Outcome | None]:
        from autohome.running.isolation import IsolatedRun  # subprocess and selectors: only if a module asks

        run = IsolatedRun(spec, kit, output, self.settings, self.policy.stop_grace_s)
        self._isolated[spec.name] = run
        try:
            error = run.run()
        except OSError as exc:  # no child could be started: that run fails, the module stays
            kit.log.exception("could not start a child process")
            error = f"no child process: {exc}"
        finally:
            self._isolated.pop(spec.name, None)
        return error, run.stopped_as[0] if run.stopped_as else None

    def _finish(self, spec: ModuleSpec, record: RunRecord, attempt: int) -> None:
        line = None
        if record.error is None:
            line = self._lines.later("module %s finished in %.3fs%s", spec.name, record.duration_s,
                                     " (overran its TIMEOUT)" if record.outcome is Outcome.OVERRUN else "",
                                     thread_name=f"module:{spec.name}")
        else:
            line = self._lines.later("module %s failed after %.3fs: %s", spec.name, record.duration_s,
                                     record.error, thread_name=f"module:{spec.name}")
        # The "finished" line is logged by the state writer once the run is stored.
        now = self.clock.now()
        self.states.record_finish(spec.name, record, now, line)
        if record.error is not None and record.outcome is not Outcome.STOPPED and attempt <= spec.retries:
            self._retry(spec, attempt)
        elif record.outcome is not Outcome.STOPPED:  # the run's final outcome, after its retries
            self.notifier.alerts.after_run(
                spec.name, record.error, now, spec.alert,
                lambda enough: self.states.failures_before_start(spec.name, spec.retries + 1, enough))

    def _retry(self, spec: ModuleSpec, attempt: int) -> None:
        """Try again after RETRY_DELAY, doubling with each try, never longer than the interval."""
        delay = spec.retry_delay * 2 ** (attempt - 1)
        interval = getattr(spec.schedule, "interval", None)
        if interval is not None:
            delay = min(delay, interval)
        log.info("module %s: try %d of %d failed; trying again in %s", spec.name, attempt,
                 spec.retries + 1, format_duration(delay))
        self.timers.at(self.clock.now() + delay, lambda: self._submit_later(spec, attempt + 1),
                       f"the retry of {spec.name}")

    def _timed_out(self, run: WatchedRun) -> None:
        """At the run's TIMEOUT: stop an isolated run; flag a thread run, which cannot be stopped."""
        spec = run.subject
        if not isinstance(spec, ModuleSpec) or not self.watchdog.is_current(run):
            return  # that run is over
        timeout = format_duration(self.timeout(spec))
        isolated = self._isolated.get(spec.name)
        if isolated is not None:
            log.warning("module %s: stopping its run at its TIMEOUT of %s (SIGTERM, then SIGKILL "
                        "after %gs)", spec.name, timeout, self.policy.stop_grace_s)
            isolated.stop(Outcome.TIMEOUT, f"timeout after {timeout}")
            return
        run.overran = True  # what `modules` shows; the watchdog fires once per run
        self.runner.revision.bump()
        self.runner.wake_waiters()  # test mode moves time on past an overrunning run
        log.warning("module %s is overrunning: running for more than its TIMEOUT of %s; it still "
                    "holds one of the %d threads, and Python cannot stop a thread: %s",
                    spec.name, timeout, self.runner.max_threads, STOP_HINT)
        self.alert(f"{spec.name} is still running after its TIMEOUT of {timeout}; {STOP_HINT}",
                   "AutoHome: module overrunning")

    def stop(self, name: str, why: str = "stopped from the console") -> str:
        """Stop a module's isolated run now; say why a thread run cannot be."""
        run = self._isolated.get(name)
        if run is not None:
            run.stop(Outcome.STOPPED, why)
            return (f"stopping {name}: SIGTERM now, SIGKILL after {self.policy.stop_grace_s:g}s if it "
                    "is still running")
        if name in self.runner.snapshot().running:
            return (f"{name} runs in one of AutoHome's threads, which Python cannot stop; {STOP_HINT} "
                    "(AUTOHOME_ISOLATION=process does so for every module)")
        return f"{name} is not running"

    def close(self, grace_s: float) -> tuple[list[str], list[str]]:
        """Shutdown: no retries, the backlog dropped, running modules given `grace_s`, then
        isolated runs stopped. Returns the backlog dropped and the thread runs abandoned."""
        self.timers.stop()
        dropped, still_running = self.runner.close(grace_s)
        stopped = self.stop_all("stopped at shutdown")
        if stopped:
            log.warning("stopping isolated runs still going after the %gs grace period: %s",
                        grace_s, ", ".join(stopped))
            self.runner.wait_for(lambda runner: not set(stopped) & set(runner.running),
                                 self.policy.stop_grace_s + 5)
            still_running = [name for name in still_running if name not in stopped]
        self.watchdog.stop()
        return dropped, still_running

    def stop_all(self, why: str) -> list[str]:
        """Stop every isolated run still going (shutdown); return their names."""
        runs = dict(self._isolated)
        for run in runs.values():
            run.stop(Outcome.STOPPED, why)
        return list(runs)

    def alert(self, message: str, title: str) -> None:
        """AutoHome's own notice about a module's trouble (notifier.Notifier.alert)."""
        self.notifier.alert(message, title)

