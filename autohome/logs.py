"""Logging: `logs/current.log`, the coloured terminal, archiving with `-n`, recent lines per module."""

from __future__ import annotations

import logging
import logging.handlers
import queue
import re
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from logging.handlers import QueueListener
from pathlib import Path
from typing import IO

import colorama

CURRENT_LOG = "current.log"
MODULE_LOGGER = "autohome.modules"
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


class ColourFormatter(logging.Formatter):
    """Colours each line by its level, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """The plain line wrapped in the level's colour."""
        text = super().format(record)
        colour = _LEVEL_COLOURS.get(record.levelno, "")
        return f"{colour}{text}{colorama.Style.RESET_ALL}" if colour else text


class RecentLines(logging.Handler):
    """Keeps the last lines each module logged, for the console's `modules read`."""

    def __init__(self, per_module: int = 50) -> None:
        super().__init__()
        self._per_module = per_module
        self._lines: dict[str, deque[str]] = {}
        self.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the formatted line under the module's name."""
        name = record.name.removeprefix(MODULE_LOGGER + ".").split(".")[0]
        line = self.format(record)
        with self.lock:  # type: ignore[union-attr]
            self._lines.setdefault(name, deque(maxlen=self._per_module)).append(line)

    def lines(self, module: str, count: int = 10) -> list[str]:
        """The last `count` lines the module logged, oldest first."""
        with self.lock:  # type: ignore[union-attr]
            recent = list(self._lines.get(module, ()))
        return recent[-count:]


class LogSetup:
    """The logging AutoHome set up, so that `close()` can flush it and take it off again."""

    def __init__(self, logger: logging.Logger, front: logging.Handler, listener: QueueListener,
                 recent: RecentLines) -> None:
        self.logger = logger
        self.front = front
        self.listener = listener
        self.recent = recent

    def stamp_with(self, now: Callable[[], datetime]) -> None:
        """Time lines by this clock instead of the system's (test mode's virtual time)."""

        def restamp(record: logging.LogRecord) -> bool:
            record.created = now().timestamp()
            record.msecs = (record.created % 1) * 1000
            return True

        self.front.addFilter(restamp)

    def close(self) -> None:
        """Write out every queued line, then detach and close the handlers."""
        self.logger.removeHandler(self.front)
        self.listener.stop()
        for handler in self.listener.handlers:
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


class ArchivingFileHandler(logging.FileHandler):
    """Writes current.log; past `max_bytes` it archives the file (as -n does) and starts a
    new one, keeping the newest `keep` archives. Only the log-writer thread calls it, so
    no line can fall between the old file and the new one."""

    def __init__(self, log_dir: Path, max_bytes: int, keep: int) -> None:
        super().__init__(log_dir / CURRENT_LOG, encoding="utf-8")
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.keep = keep

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line, then archive the file if it has grown too big."""
        super().emit(record)
        if self.max_bytes and self.stream is not None and self.stream.tell() >= self.max_bytes:
            self.close()  # Windows cannot rename an open file
            archive_current_log(self.log_dir)
            prune_archives(self.log_dir, self.keep)
            self.stream = self._open()


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
    plain = logging.Formatter(LINE_FORMAT, DATE_FORMAT)

    file_handler = ArchivingFileHandler(log_dir, max_bytes, keep)
    file_handler.setLevel(level)
    file_handler.setFormatter(plain)
    handlers: list[logging.Handler] = [file_handler]

    if terminal is not None:
        if colour:
            colorama.just_fix_windows_console()
        stream_handler = logging.StreamHandler(terminal)
        stream_handler.setLevel(level)
        formatter_class = ColourFormatter if colour else logging.Formatter
        stream_handler.setFormatter(formatter_class(LINE_FORMAT, DATE_FORMAT))
        handlers.append(stream_handler)

    recent = RecentLines()
    recent.setLevel(logging.DEBUG)
    recent.addFilter(lambda record: record.name.startswith(MODULE_LOGGER + "."))
    handlers.append(recent)

    # Threads only put records on a queue; one `log-writer` thread formats and writes them,
    # so a module never waits on the disk or the terminal (and never on another's line).
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, *handlers, respect_handler_level=True)
    listener.start()
    listener._thread.name = "log-writer"  # type: ignore[union-attr]
    front = logging.handlers.QueueHandler(records)
    logger.addHandler(front)
    return LogSetup(logger, front, listener, recent)
