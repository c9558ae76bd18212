"""One run of one module: what it is handed, what is recorded, and AutoHome's alerts about it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from autohome.clock import Clock, epoch_s, stopwatch
from autohome.db import Database
from autohome.durations import format_duration
from autohome.loader import ModuleKit, ModuleSpec
from autohome.logs import MODULE_LOGGER
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
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module boundary: logged below
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


class Line(NamedTuple):
    """A line to log later, as it stood when it was said: by whom, when, and on which thread."""

    msg: str
    args: tuple[object, ...]
    created: float
    thread_id: int | None
    thread_name: str


class RunLines:
    """The INFO records every run logs ("module X started", "... finished"), made from a
    template: LogRecord() looks up the process, the thread and the source file, about 3 us,
    and `log.info` walks the stack as well; in a burst of runs the thread that starts the
    modules pays for each (CPython hands a new thread the GIL). Made this way a record is
    the same LogRecord for a fraction of that, and a line for later (`later`, `emit`) costs
    the run's thread only a tuple."""

    def __init__(self, logger: logging.Logger,
                 sink: Callable[[logging.LogRecord], object] | None = None) -> None:
        self.logger = logger
        # Where the records go: the log's queue itself when there is one (skipping the walk
        # up the logger tree), else the logger.
        self.sink = sink or logger.handle
        self._template = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "", (), None).__dict__

    def later(self, msg: str, *args: object) -> Line | None:
        """`msg % args` as said now on this thread, to `emit` later; None when INFO is off."""
        if not self.logger.isEnabledFor(logging.INFO):
            return None
        thread = threading.current_thread()
        return Line(msg, args, epoch_s(), thread.ident, thread.name)

    def emit(self, line: Line) -> None:
        """Log a line said earlier, with the time and thread it was said on."""
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = record.__dict__
        fields.update(self._template)
        fields.update(msg=line.msg, args=line.args, created=line.created,
                      msecs=(line.created % 1) * 1000, thread=line.thread_id, threadName=line.thread_name)
        self.sink(record)

    def log(self, msg: str, *args: object) -> None:
        """Log `msg % args` at INFO now."""
        line = self.later(msg, *args)
        if line is not None:
            self.emit(line)
