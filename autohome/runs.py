"""One run of one module: what it is handed, what is recorded, and AutoHome's alerts about it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from autohome.clock import Clock, epoch_s, stopwatch
from autohome.db import Database
from autohome.durations import format_duration
from autohome.loader import ModuleKit, ModuleSpec
from autohome.logs import MODULE_LOGGER
from autohome.logwriter import Line
from autohome.outbox import Notifier
from autohome.scheduler import Runner, Submission
from autohome.state import ModuleStates, RunRecord
from autohome.store import ModuleStore

log = logging.getLogger("autohome.main")


class RunExecutor:
    """Starts runs through the Runner and carries each one out on its thread; a module's
    failure stays its own."""

    def __init__(self, runner: Runner, states: ModuleStates, notifier: Notifier, clock: Clock,
                 db: Database, settings: Mapping[str, str], default_timeout: timedelta,
                 alert_on_failure: bool = True, lines: RunLines | None = None) -> None:
        self.runner = runner
        self.states = states
        self.notifier = notifier
        self.clock = clock
        self.db = db
        self.settings = settings
        self.default_timeout = default_timeout
        self.alert_on_failure = alert_on_failure
        self._kits: dict[str, ModuleKit] = {}
        self._lines = lines or RunLines(log)

    def submit(self, spec: ModuleSpec) -> Submission:
        """Run the module on a thread of its own, or queue it while all threads are busy."""
        result = self.runner.submit(spec.name, lambda: self.execute(spec))
        if result is Submission.QUEUED:
            log.debug("module %s queued: all %d threads busy", spec.name, self.runner.max_threads)
        return result

    def timeout(self, spec: ModuleSpec) -> timedelta:
        """The module's TIMEOUT, or AUTOHOME_MODULE_TIMEOUT."""
        return spec.timeout or self.default_timeout

    def kit(self, spec: ModuleSpec) -> ModuleKit:
        """What the module's run() may ask for, made once per module rather than per run."""
        kit = self._kits.get(spec.name)
        if kit is None:
            module_log = logging.getLogger(f"{MODULE_LOGGER}.{spec.name}")
            kit = self._kits[spec.name] = ModuleKit(
                module_log, self.notifier.for_module(module_log), ModuleStore(self.db, spec.name),
                self.settings)
        return kit

    def execute(self, spec: ModuleSpec) -> None:
        """One run of one module, on its own thread."""
        kit = self.kit(spec)
        started = self.clock.now()
        self.states.record_start(spec.name, started)
        self._lines.log("module %s started", spec.name)
        elapsed = stopwatch()
        error = None
        try:
            spec.run(*[getattr(kit, wanted) for wanted in spec.wants])
        except BaseException as exc:  # noqa: BLE001 - the module boundary: even Ctrl-C or exit is its own
            error = f"{type(exc).__name__}: {exc}"
            kit.log.exception("run failed")
        duration_s = elapsed()
        # The "finished" line is logged by the state writer once the run is stored.
        if error is None:
            line = self._lines.later("module %s finished in %.3fs", spec.name, duration_s)
        else:
            line = self._lines.later("module %s failed after %.3fs: %s", spec.name, duration_s, error)
        previous = self.states.record_finish(spec.name, RunRecord(started, duration_s, error),
                                             self.clock.now(), line)
        was_ok = previous is None or previous.is_ok
        if error is not None and was_ok:
            self.alert(f"{spec.name} failed: {error}", "AutoHome: module failing")
        elif error is None and not was_ok:
            self.alert(f"{spec.name} works again", "AutoHome: module recovered")

    def check_overruns(self, spec_of: Callable[[str], ModuleSpec | None], now: datetime) -> None:
        """Flag, log and alert once about each run that has passed its TIMEOUT."""
        for name in self.runner.snapshot().running:
            spec = spec_of(name)
            since = self.states.get(name).running_since
            if spec is None or since is None or now - since <= self.timeout(spec):
                continue
            if self.states.flag_overrun(name):
                timeout = self.timeout(spec)
                log.warning("module %s is overrunning: running for %s, its TIMEOUT is %s; it still "
                            "holds one of the %d threads", name, format_duration(now - since),
                            format_duration(timeout), self.runner.max_threads)
                self.alert(f"{name} has been running for {format_duration(now - since)} "
                           f"(TIMEOUT {format_duration(timeout)})", "AutoHome: module overrunning")

    def alert(self, message: str, title: str) -> None:
        """AutoHome's own notice about trouble: on changes only, never on every run."""
        if self.alert_on_failure:
            self.notifier.send(log, "autohome", message, title=title)


class RunLines:
    """The INFO lines every run logs ("module X started", "... finished"), said as `Line`
    tuples: the run's thread pays for a tuple, the log writer makes the record (see Line).
    Without a log writer (tests, embedding) a line is logged through its logger."""

    def __init__(self, logger: logging.Logger, sink: Callable[[Line], object] | None = None,
                 now: Callable[[], float] = epoch_s) -> None:
        self.logger = logger
        self.sink = sink or _through_logger
        self.now = now

    def later(self, msg: str, *args: object) -> Line | None:
        """`msg % args` as said now on this thread, to `emit` later; None when INFO is off."""
        if not self.logger.isEnabledFor(logging.INFO):
            return None
        thread = threading.current_thread()
        return Line(self.logger.name, msg, args, self.now(), thread.ident, thread.name)

    def emit(self, line: Line) -> None:
        """Log a line said earlier, with the time and thread it was said on."""
        self.sink(line)

    def log(self, msg: str, *args: object) -> None:
        """Log `msg % args` at INFO now."""
        line = self.later(msg, *args)
        if line is not None:
            self.sink(line)


def _through_logger(line: Line) -> None:
    logging.getLogger(line.name).handle(line.record())
