"""Logging: `logs/current.log`, the coloured terminal, archiving with `-n`, recent lines per module."""

from __future__ import annotations

import logging
import queue
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

import colorama

from autohome.logwriter import FastLog, LogWriter, QueuedLine, QueueFront

CURRENT_LOG = "current.log"
MODULE_LOGGER = "autohome.modules"
_MODULE_PREFIX = MODULE_LOGGER + "."
LINE_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_TIMESTAMP = re.compile(rb"(\d{4})-(\d{2})-(\d{2})[ T_](\d{2})[:-](\d{2})[:-](\d{2})")
_LEVEL_COLOURS = {
    logging.DEBUG: colorama.Style.DIM,
    logging.INFO: "",
    logging.WARNING: colorama.Fore.YELLOW,
    logging.ERROR: colorama.Fore.RED,
    logging.CRITICAL: colorama.Fore.RED + colorama.Style.BRIGHT,
}


def tail_lines(path: Path, count: int, block_bytes: int = 65536) -> list[str]:
    """The last `count` lines of a file, reading backwards from its end only as far as needed."""
    with path.open("rb") as stream:
        stream.seek(0, 2)
        position = stream.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(block_bytes, position)
            position -= step
            stream.seek(position)
            data = stream.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []


def first_timestamp(path: Path) -> str | None:
    """The first `YYYY-MM-DD HH:MM:SS` in the file, as `YYYY-MM-DD_HH-MM-SS`, or None."""
    with path.open("rb") as stream:
        for line in stream:
            found = _TIMESTAMP.search(line)
            if found:
                y, mo, d, h, mi, s = (part.decode() for part in found.groups())
                return f"{y}-{mo}-{d}_{h}-{mi}-{s}"
    return None


def archive_current_log(log_dir: Path) -> Path | None:
    """Rename `current.log` after its first timestamp (or a unique id); never overwrite.

    Returns the archive's path, or None when there was no current.log to archive.
    """
    current = log_dir / CURRENT_LOG
    if not current.is_file():
        return None
    stem = first_timestamp(current) or f"archive-{uuid.uuid4().hex[:12]}"
    target = log_dir / f"{stem}.log"
    suffix = 0
    while target.exists():
        suffix += 1
        target = log_dir / f"{stem}-{suffix}.log"
    current.rename(target)
    return target


class LineFormatter(logging.Formatter):
    """AutoHome's line: `2026-01-05 12:00:00.123 INFO    [module:x] autohome.modules.x: text`.

    Made with an f-string rather than LINE_FORMAT's %-formatting, and with the date text
    made once per second: a burst of runs writes thousands of lines, and this is a third
    of the cost of each (the result is the same line)."""

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT, DATE_FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def line(self, created: float, levelname: str, thread_name: str | None, name: str, message: str) -> str:
        """One line's text, without traceback."""
        return (f"{self._date(created)}.{int((created % 1) * 1000):03d} {levelname:<7} "
                f"[{thread_name}] {name}: {message}")

    def queued_line(self, queued: QueuedLine) -> str:
        """The line for what FastLog queued, as format() would make it from the record."""
        return self.line(queued.created, "INFO", queued.thread_name, queued.name, queued.message())

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

    def format(self, record: logging.LogRecord) -> str:
        """The plain line wrapped in the level's colour."""
        return _coloured(super().format(record), record.levelno)

    def queued_line(self, queued: QueuedLine) -> str:
        """The plain line wrapped in INFO's colour."""
        return _coloured(super().queued_line(queued), logging.INFO)


def _coloured(text: str, levelno: int) -> str:
    colour = _LEVEL_COLOURS.get(levelno, "")
    return f"{colour}{text}{colorama.Style.RESET_ALL}" if colour else text


class RecentLines(logging.Handler):
    """Keeps the last lines each module logged, for the console's `modules read`."""

    def __init__(self, per_module: int = 50) -> None:
        super().__init__()
        self._per_module = per_module
        self._lines: dict[str, deque[str]] = {}
        self.setFormatter(LineFormatter())

    def handle(self, record: logging.LogRecord) -> bool:
        """Keep module lines only; the check comes first, as most lines are not theirs."""
        return record.name.startswith(_MODULE_PREFIX) and super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the formatted line under the module's name."""
        self._keep(record.name, self.format(record))

    def write_line(self, queued: QueuedLine) -> None:
        """Remember a queued line if a module's logger made it."""
        if queued.name.startswith(_MODULE_PREFIX):
            self._keep(queued.name, _line_formatter(self).queued_line(queued))

    def _keep(self, logger_name: str, line: str) -> None:
        name = logger_name.removeprefix(_MODULE_PREFIX).split(".")[0]
        with self.lock:  # type: ignore[union-attr]
            self._lines.setdefault(name, deque(maxlen=self._per_module)).append(line)

    def lines(self, module: str, count: int = 10) -> list[str]:
        """The last `count` lines the module logged, oldest first."""
        with self.lock:  # type: ignore[union-attr]
            recent = list(self._lines.get(module, ()))
        return recent[-count:]


def _line_formatter(handler: logging.Handler) -> LineFormatter:
    formatter = handler.formatter
    return formatter if isinstance(formatter, LineFormatter) else LineFormatter()


class LogSetup:
    """The logging AutoHome set up, so that `close()` can flush it and take it off again."""

    def __init__(self, logger: logging.Logger, front: logging.Handler, writer: LogWriter,
                 recent: RecentLines, log_file: Path) -> None:
        self.logger = logger
        self.front = front
        self.writer = writer
        self.recent = recent
        self.log_file = log_file
        self._now: Callable[[], float] = time.time  # stamp_with() changes it

    def fast_log(self, logger: logging.Logger) -> FastLog:
        """A FastLog for `logger` that queues straight to this setup's log writer."""
        return FastLog(logger, self.writer.records, lambda: self._now())

    def flush(self) -> None:
        """Wait until the lines logged so far are written (before a prompt, say)."""
        self.writer.flush()

    def before_writing(self, barrier: Callable[[], object]) -> None:
        """Call `barrier` before each batch of lines is written (it may wait)."""
        self.writer.before_write = barrier

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


_ARCHIVE_NAME = re.compile(r"^(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?|archive-[0-9a-f]+(-\d+)?)\.log$")


def archives(log_dir: Path) -> list[Path]:
    """The archived logs in the folder, oldest first."""
    found = [path for path in log_dir.iterdir() if _ARCHIVE_NAME.match(path.name)]
    return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name))


def prune_archives(log_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` archives; return what was deleted."""
    old = archives(log_dir)[:-keep] if keep > 0 else archives(log_dir)
    for path in old:
        path.unlink(missing_ok=True)
    return old


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines to a stream and leaves the flushing to the log writer."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line without flushing."""
        try:
            self.stream.write(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)

    def write_line(self, queued: QueuedLine) -> None:
        """Write a queued line without making a record of it."""
        try:
            self.stream.write(_line_formatter(self).queued_line(queued) + self.terminator)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(queued.to_record())


class ArchivingFileHandler(logging.FileHandler):
    """Writes current.log; past `max_bytes` it archives the file (as -n does) and starts a
    new one, keeping the newest `keep` archives. Only the log-writer thread calls it, so
    no line can fall between the old file and the new one. Flushing is left to the log
    writer, once per batch."""

    def __init__(self, log_dir: Path, max_bytes: int, keep: int) -> None:
        super().__init__(log_dir / CURRENT_LOG, encoding="utf-8")
        self.log_dir = log_dir
        self.log_file = log_dir / CURRENT_LOG
        self.max_bytes = max_bytes
        self.keep = keep
        self._size = self._file_size()

    def _file_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line, then archive the file if it has grown too big."""
        self._write(self.format(record) + self.terminator, lambda: record)

    def write_line(self, queued: QueuedLine) -> None:
        """Write a queued line without making a record of it."""
        self._write(_line_formatter(self).queued_line(queued) + self.terminator, queued.to_record)

    def _write(self, line: str, record_for_errors: Callable[[], logging.LogRecord]) -> None:
        # Nothing may escape: an exception here would end the log-writer thread.
        try:
            if self.stream is None:
                self.stream = self._open()
                self._size = self._file_size()
            self.stream.write(line)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record_for_errors())
            return
        self._size += len(line.encode("utf-8", "replace"))
        if self.max_bytes and self._size >= self.max_bytes:
            self.close()  # Windows cannot rename an open file
            try:
                archive_current_log(self.log_dir)
                prune_archives(self.log_dir, self.keep)
            except OSError:  # current.log goes on; archiving is tried again after max_bytes more
                self.handleError(record_for_errors())
            try:
                self.stream = self._open()
            except OSError:  # the next line tries again
                self.handleError(record_for_errors())
            self._size = 0


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
