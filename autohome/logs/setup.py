"""Logging: the handlers for `logs/current.log` and the coloured terminal, recent lines per module."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from autohome.clock import epoch_s
from autohome.logs.archive import CURRENT_LOG
from autohome.logs.file import ArchivingFileHandler
from autohome.logs.follow import LogFollowers
from autohome.logs.guard import LoggingGuard, ModuleLogRouter
from autohome.logs.queue import LogQueue
from autohome.logs.terminal import TerminalHandler
from autohome.logs.tree import MODULE_LOGGER, get_logger
from autohome.logs.writer import MAX_MESSAGE_CHARS, Line, LogWriter, QueueFront
from autohome.text import cut, escape_controls

_MODULE_PREFIX = MODULE_LOGGER + "."
LINE_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"



class LineFormatter(logging.Formatter):
    """AutoHome's line: `2026-01-05 12:00:00.123 INFO    [module:x] autohome.modules.x: text`.

    Made with an f-string rather than LINE_FORMAT's %-formatting, and with the date text
    made once per second: a burst of runs writes thousands of lines, and this is a third
    of the cost of each (the result is the same line)."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT, DATE_FORMAT)
        self.converter = time.localtime  # its own: a module may set logging.Formatter.converter
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """The line, followed by the traceback or stack if the record has one; control
        characters shown escaped (see text.py), in the file as on a terminal."""
        record.message = record.getMessage()
        line = escape_controls(f"{self._date(record.created)}.{int(record.msecs):03d} {record.levelname:<7} "
                               f"[{record.threadName}] {record.name}: {record.message}")
        if record.exc_info and not record.exc_text:
            record.exc_text = escape_controls(cut(self.formatException(record.exc_info), MAX_MESSAGE_CHARS))
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{escape_controls(self.formatStack(record.stack_info))}"
        return line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time to the second (milliseconds are added by the format)."""
        return self._date(record.created)

    def _date(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime(DATE_FORMAT, self.converter(created)))
        return cached[1]


class ColourFormatter(LineFormatter):
    """Colours each line by its level, for a terminal."""

    def __init__(self) -> None:
        super().__init__()
        import colorama  # only a coloured terminal needs it (it loads ctypes, for Windows)

        self._reset = colorama.Style.RESET_ALL
        self._colours = {
            logging.DEBUG: colorama.Style.DIM,
            logging.WARNING: colorama.Fore.YELLOW,
            logging.ERROR: colorama.Fore.RED,
            logging.CRITICAL: colorama.Fore.RED + colorama.Style.BRIGHT,
        }

    def format(self, record: logging.LogRecord) -> str:
        """The plain line wrapped in the level's colour."""
        text = super().format(record)
        colour = self._colours.get(record.levelno, "")
        return f"{colour}{text}{self._reset}" if colour else text


class RecentLines(logging.Handler):
    """Keeps the last lines each module logged, for the console's `modules read`."""

    def __init__(self, per_module: int = 50) -> None:
        super().__init__()
        self._per_module = per_module
        self._lines: dict[str, deque[str]] = {}
        self.setFormatter(LineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        """Remember a module's line under the module's name; the check comes first, as most
        lines are not modules'."""
        if not record.name.startswith(_MODULE_PREFIX):
            return
        line = self.format(record)
        name = record.name.removeprefix(_MODULE_PREFIX).split(".")[0]
        with self.lock:  # type: ignore[union-attr]
            self._lines.setdefault(name, deque(maxlen=self._per_module)).append(line)

    def lines(self, module: str, count: int = 10) -> list[str]:
        """The last `count` lines the module logged, oldest first."""
        with self.lock:  # type: ignore[union-attr]
            recent = list(self._lines.get(module, ()))
        return recent[-count:]


class LogSetup:
    """The logging AutoHome set up, so that `close()` can flush it and take it off again."""

    def __init__(self, logger: logging.Logger, front: logging.Handler, writer: LogWriter,
                 recent: RecentLines, log_file: Path, followers: LogFollowers,
                 guard: LoggingGuard | None = None, root_level: int = logging.WARNING) -> None:
        self.logger = logger
        self.followers = followers  # `log -f`
        self.front = front
        self.writer = writer
        self.recent = recent
        self.log_file = log_file
        self.guard = guard
        self._root_level = root_level  # the `logging` root's level before AutoHome set it
        self.now: Callable[[], float] = epoch_s  # the time lines carry (see stamp_with)

    def put(self, line: Line) -> None:
        """Queue a line for the writer to make into a record (see writer.Line)."""
        self.writer.records.put(line)

    def flush(self) -> None:
        """Wait until the lines logged so far are written, on the terminal too if it reads
        (before a prompt, say)."""
        self.writer.flush()
        for handler in self.writer.handlers:
            if isinstance(handler, TerminalHandler):
                handler.wait_written()

    def stamp_with(self, now: Callable[[], datetime]) -> None:
        """Time lines by this clock instead of the system's (test mode's virtual time)."""

        def restamp(record: logging.LogRecord) -> bool:
            record.created = now().timestamp()
            record.msecs = (record.created % 1) * 1000
            return True

        self.front.addFilter(restamp)
        self.now = lambda: now().timestamp()

    @property
    def is_terminal_stuck(self) -> bool:
        """Whether the terminal still has not taken its lines (after close(): it never reads)."""
        return any(isinstance(handler, TerminalHandler) and handler.is_stuck
                   for handler in self.writer.handlers)

    def close(self) -> None:
        """Write out every queued line, then detach and close the handlers."""
        if self.guard is not None:
            logging.root.removeHandler(self.guard.router)
            logging.root.setLevel(self._root_level)
        self.logger.removeHandler(self.front)
        self.writer.stop()
        for handler in self.writer.handlers:
            handler.stop() if isinstance(handler, TerminalHandler) else handler.close()


def setup_logging(
    log_dir: Path,
    level: str = "INFO",
    terminal: IO[str] | None = None,
    colour: bool = False,
    max_bytes: int = 0,
    keep: int = 20,
    file_name: str = CURRENT_LOG,
    module_logger: Callable[[], logging.Logger | None] = lambda: None,
    reopen_terminal: Callable[[], IO[str]] | None = None,
) -> LogSetup:
    """Send the `autohome` logger tree to `current.log` (or `file_name`) and, if given, to the
    terminal; route what modules log through `logging` itself into it (`module_logger`: the
    logger of the module whose run is on this thread, None on other threads)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = get_logger("autohome")
    logger.setLevel(level)
    get_logger(MODULE_LOGGER).setLevel(logging.DEBUG)  # for `modules read`
    plain = LineFormatter()

    stream_handler = None
    if terminal is not None:
        if colour:
            import colorama

            colorama.just_fix_windows_console()
        stream_handler = TerminalHandler(terminal, reopen_terminal)
        stream_handler.setLevel(level)
        stream_handler.setFormatter(ColourFormatter() if colour else LineFormatter())

    # What the file handler has to say about the file itself goes to the terminal.
    file_handler = ArchivingFileHandler(log_dir, max_bytes, keep, file_name,
                                        say=stream_handler.say if stream_handler else None)
    file_handler.setLevel(level)
    file_handler.setFormatter(plain)
    handlers: list[logging.Handler] = [file_handler]
    if stream_handler is not None:
        handlers.append(stream_handler)

    recent = RecentLines()
    recent.setLevel(logging.DEBUG)
    handlers.append(recent)
    followers = LogFollowers(plain, level)
    handlers.append(followers)

    # Threads only put records on a queue; one `log-writer` thread formats and writes them,
    # so a module never waits on the disk or the terminal (and never on another's line).
    records = LogQueue()
    writer = LogWriter(records, handlers)
    writer.start()
    front = QueueFront(records)
    logger.handlers[:] = [front]
    router = ModuleLogRouter(module_logger, logger)
    root_level = logging.root.level
    logging.root.setLevel(logging.INFO)  # a module's logging.info() shows, as in a script
    logging.root.addHandler(router)
    guard = LoggingGuard(router, front, logger.level)
    return LogSetup(logger, front, writer, recent, file_handler.log_file, followers, guard, root_level)
