"""Logging: the handlers for `logs/current.log` and the coloured terminal, recent lines per module."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from autohome.archive import CURRENT_LOG, archive_current_log, prune_archives
from autohome.clock import epoch_s
from autohome.logwriter import Line, LogWriter, QueueFront

MODULE_LOGGER = "autohome.modules"
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
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """The line, followed by the traceback or stack if the record has one."""
        record.message = record.getMessage()
        line = (f"{self._date(record.created)}.{int(record.msecs):03d} {record.levelname:<7} "
                f"[{record.threadName}] {record.name}: {record.message}")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
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
                 recent: RecentLines, log_file: Path) -> None:
        self.logger = logger
        self.front = front
        self.writer = writer
        self.recent = recent
        self.log_file = log_file
        self._now: Callable[[], float] = epoch_s

    def put(self, line: Line) -> None:
        """Queue a line for the writer to make into a record (see logwriter.Line)."""
        self.writer.records.put(line)  # type: ignore[arg-type]

    def now(self) -> float:
        """The time lines carry: the system's, or the clock given to `stamp_with`."""
        return self._now()

    def flush(self) -> None:
        """Wait until the lines logged so far are written (before a prompt, say)."""
        self.writer.flush()

    def stamp_with(self, now: Callable[[], datetime]) -> None:
        """Time lines by this clock instead of the system's (test mode's virtual time)."""

        def restamp(record: logging.LogRecord) -> bool:
            record.created = now().timestamp()
            record.msecs = (record.created % 1) * 1000
            return True

        self.front.addFilter(restamp)
        self._now = lambda: now().timestamp()

    def close(self) -> None:
        """Write out every queued line, then detach and close the handlers."""
        self.logger.removeHandler(self.front)
        self.writer.stop()
        for handler in self.writer.handlers:
            handler.close()


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines to a stream and leaves the flushing to the log writer, once per batch."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line without flushing."""
        try:
            self.stream.write(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)


class ArchivingFileHandler(logging.FileHandler):
    """Writes current.log; past `max_bytes` it archives the file (as -n does) and starts a
    new one, keeping the newest `keep` archives. Only the log-writer thread calls it, so
    no line can fall between the old file and the new one. Flushing is left to the log
    writer, once per batch.

    Why not RotatingFileHandler: it numbers its archives (.1, .2, ...) by renaming each one
    at every rollover, and flushes and stats the file for every line; AutoHome's archives
    keep the name of their first timestamp, the same as `-n` gives them."""

    def __init__(self, log_dir: Path, max_bytes: int, keep: int) -> None:
        super().__init__(log_dir / CURRENT_LOG, encoding="utf-8")
        self.log_dir = log_dir
        self.log_file = log_dir / CURRENT_LOG
        self.max_bytes = max_bytes
        self.keep = keep
        self._size = self._file_size()
        self._unflushed = 0  # lines written since the last flush
        self._lost = 0  # lines that could not be written, since _lost_since
        self._lost_since: str | None = None
        self._reason = ""

    def _file_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line, then archive the file if it has grown too big. While the disk
        refuses (full, gone), lines are counted, not written; the first line that can be
        written again is preceded by one that says how many were lost, and since when."""
        line = self.format(record) + self.terminator
        # Nothing may escape: an exception here would reach the log-writer thread.
        try:
            if self.stream is None:
                self.stream = self._open()
                self._size = self._file_size()
            if self._lost:
                self.stream.write(self._lost_line(record) + self.terminator)
            self.stream.write(line)
        except OSError as exc:
            self._failed(exc, 1)
            return
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)
            return
        self._unflushed += 1
        self._size += len(line.encode("utf-8", "replace"))
        if self.max_bytes and self._size >= self.max_bytes:
            self._archive(record)

    def flush(self) -> None:
        """Flush what the batch wrote; lines that cannot reach the disk are counted as lost."""
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except OSError as exc:
            self._failed(exc, 0)
            return
        if self._unflushed and self._lost:
            self._lost, self._lost_since = 0, None  # the notice went out with this batch
        self._unflushed = 0

    def close(self) -> None:
        """Close the file; a disk that refuses the last lines does not make shutdown fail."""
        try:
            super().close()
        except OSError as exc:
            self._failed(exc, 0)

    def _failed(self, exc: OSError, lines: int) -> None:
        if not self._lost:
            self._lost_since = self.formatter.formatTime(_now_record()) if self.formatter else "?"
            _say(f"autohome: cannot write {self.log_file} ({exc.strerror or exc}); counting the lines "
                 "lost until it can\n")
        self._lost += lines + self._unflushed
        self._unflushed = 0
        self._reason = exc.strerror or str(exc)
        stream, self.stream = self.stream, None  # reopened for the next line
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass  # its buffer is what was lost

    def _lost_line(self, record: logging.LogRecord) -> str:
        notice = logging.LogRecord("autohome.logs", logging.WARNING, __file__, 0,
                                   "%d log line(s) could not be written to %s since %s (%s)",
                                   (self._lost, self.log_file.name, self._lost_since, self._reason), None)
        notice.created, notice.msecs, notice.threadName = record.created, record.msecs, "log-writer"
        return self.format(notice)

    def _archive(self, record: logging.LogRecord) -> None:
        self.close()  # Windows cannot rename an open file
        try:
            archive_current_log(self.log_dir)
            prune_archives(self.log_dir, self.keep)
        except OSError:  # current.log goes on; archiving is tried again after max_bytes more
            self.handleError(record)
        try:
            self.stream = self._open()
        except OSError:  # the next line tries again
            self.handleError(record)
        self._size = 0


def _now_record() -> logging.LogRecord:
    return logging.LogRecord("autohome.logs", logging.WARNING, __file__, 0, "", (), None)


def _say(text: str) -> None:
    """Tell the terminal about the log itself (nothing else can be logged about it)."""
    stream = sys.__stderr__
    if stream is not None:
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # no terminal either


def setup_logging(
    log_dir: Path,
    level: str = "INFO",
    terminal: IO[str] | None = None,
    colour: bool = False,
    max_bytes: int = 0,
    keep: int = 20,
) -> LogSetup:
    """Send the `autohome` logger tree to `current.log` and, if given, to the terminal."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("autohome")
    logger.setLevel(level)
    logging.getLogger(MODULE_LOGGER).setLevel(logging.DEBUG)  # for `modules read`
    plain = LineFormatter()

    file_handler = ArchivingFileHandler(log_dir, max_bytes, keep)
    file_handler.setLevel(level)
    file_handler.setFormatter(plain)
    handlers: list[logging.Handler] = [file_handler]

    if terminal is not None:
        if colour:
            import colorama

            colorama.just_fix_windows_console()
        stream_handler = BatchedStreamHandler(terminal)
        stream_handler.setLevel(level)
        stream_handler.setFormatter(ColourFormatter() if colour else LineFormatter())
        handlers.append(stream_handler)

    recent = RecentLines()
    recent.setLevel(logging.DEBUG)
    handlers.append(recent)

    # Threads only put records on a queue; one `log-writer` thread formats and writes them,
    # so a module never waits on the disk or the terminal (and never on another's line).
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = LogWriter(records, handlers)
    writer.start()
    front = QueueFront(records)
    logger.addHandler(front)
    return LogSetup(logger, front, writer, recent, file_handler.log_file)


class RunLines:
    """The INFO lines every run logs ("module X started", "... finished"), said as `Line`
    tuples: the run's thread pays for a tuple, the log writer makes the record (see Line).
    Without a log writer (tests, embedding) a line is logged through its logger."""

    def __init__(self, logger: logging.Logger, sink: Callable[[Line], object] | None = None,
                 now: Callable[[], float] = epoch_s) -> None:
        self.logger = logger
        self.sink = sink or _through_logger
        self.now = now

    def later(self, msg: str, *args: object, thread_name: str | None = None) -> Line | None:
        """`msg % args` as said now on this thread (or on behalf of the thread named), to
        `emit` later; None when INFO is off."""
        if not self.logger.isEnabledFor(logging.INFO):
            return None
        if thread_name is not None:
            return Line(self.logger.name, msg, args, self.now(), None, thread_name)
        thread = threading.current_thread()
        return Line(self.logger.name, msg, args, self.now(), thread.ident, thread.name)

    def emit(self, line: Line) -> None:
        """Log a line said earlier, with the time and thread it was said on."""
        self.sink(line)

    def log(self, msg: str, *args: object, thread_name: str | None = None) -> None:
        """Log `msg % args` at INFO now."""
        line = self.later(msg, *args, thread_name=thread_name)
        if line is not None:
            self.sink(line)


def _through_logger(line: Line) -> None:
    logging.getLogger(line.name).handle(line.record())
