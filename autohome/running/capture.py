"""What modules print: sys.stdout and sys.stderr, split by thread, so that a module run's
output goes to its own log, line by line, and is kept for `modules read`.

Every other thread writes where it always did. Closing sys.stdout or sys.stderr from a
module closes nothing: AutoHome's own log never writes through them (see cli/daemon.py).
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections import deque
from typing import IO

from autohome.logs.tree import get_logger

KEEP_LINES = 200  # of one run's output, for `modules read`
MAX_LINE = 8192  # characters of one line that are kept; the rest of a longer line is counted
_NO_LINES: deque[str] = deque(maxlen=0)
_FIRST_WRITE = threading.Lock()


class _Partial:
    """The line being written to one stream: its first MAX_LINE characters, and how many
    more there were. Text is taken in pieces as it comes, so a line of any length costs
    time in proportion to its length and memory of at most MAX_LINE."""

    __slots__ = ("pieces", "length", "dropped")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self.dropped = 0

    def add(self, text: str, start: int, end: int) -> None:
        """Take text[start:end] (without copying what is not kept)."""
        room = MAX_LINE - self.length
        if end - start > room:
            self.dropped += end - start - max(room, 0)
            end = start + max(room, 0)
        if end > start:
            self.pieces.append(text[start:end])
            self.length += end - start

    def take(self) -> str:
        line = "".join(self.pieces).rstrip("\r")
        if self.dropped:
            line = f"{line} [... {self.dropped:,} more characters of this line not kept]"
        self.pieces, self.length, self.dropped = [], 0, 0
        return line

    def __bool__(self) -> bool:
        return bool(self.length or self.dropped)


class RunOutput:
    """One run's output: each complete line is logged under the module's logger (stdout at
    INFO, stderr at WARNING) and the last KEEP_LINES are kept. Made for every run, and most
    print nothing: it costs almost nothing until something is written."""

    __slots__ = ("logger", "lines", "_partial", "_lock")

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.lines: deque[str] = _NO_LINES
        self._partial: dict[int, _Partial] = {}
        self._lock = _FIRST_WRITE  # replaced by a lock of its own at the first write

    def _start(self) -> None:
        with _FIRST_WRITE:
            if self._lock is _FIRST_WRITE:
                self.lines = deque(maxlen=KEEP_LINES)
                self._partial = {logging.INFO: _Partial(), logging.WARNING: _Partial()}
                self._lock = threading.Lock()  # a child's two pipes are read on two threads

    def write(self, text: str, level: int = logging.INFO) -> None:
        """Take text as it comes; log the lines it completes."""
        if self._lock is _FIRST_WRITE:
            self._start()
        complete = []
        with self._lock:
            partial = self._partial[level]
            start = 0
            while (end := text.find("\n", start)) >= 0:
                partial.add(text, start, end)
                complete.append(partial.take())
                start = end + 1
            partial.add(text, start, len(text))
        for line in complete:
            self._line(line, level)

    def close(self) -> None:
        """Log what is left without a line end."""
        if self._lock is _FIRST_WRITE:
            return  # nothing was written
        with self._lock:
            left = [(level, partial.take()) for level, partial in self._partial.items() if partial]
        for level, text in left:
            self._line(text, level)

    def _line(self, line: str, level: int) -> None:
        self.lines.append(line)
        self.logger.log(level, "%s %s", "out:" if level == logging.INFO else "err:", line)


class _ThreadStream(io.TextIOBase):
    """What sys.stdout (or sys.stderr) becomes: writes from a run go to its RunOutput."""

    def __init__(self, original: IO[str], runs: dict[int, RunOutput], level: int) -> None:
        self._original = original
        self._runs = runs
        self._level = level

    def write(self, text: str) -> int:
        output = self._runs.get(threading.get_ident())
        if output is None:
            return self._original.write(text)
        output.write(text, self._level)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self._runs:
            self._original.flush()

    def close(self) -> None:
        """Closes nothing: the stream is the process's, not a module's to close."""

    @property
    def closed(self) -> bool:
        return False

    def isatty(self) -> bool:
        return threading.get_ident() not in self._runs and self._original.isatty()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    @property
    def errors(self) -> str:  # type: ignore[override]
        """input() uses readline only when sys.stdout names its encoding and errors as text."""
        return getattr(self._original, "errors", None) or "strict"


class OutputCapture:
    """Puts thread-splitting streams in place of sys.stdout and sys.stderr (`install`) and
    takes them away again (`uninstall`); `run_output` routes one run's thread."""

    def __init__(self) -> None:
        self._runs: dict[int, RunOutput] = {}
        self._saved: tuple[IO[str], IO[str]] | None = None
        self._installed: tuple[_ThreadStream, _ThreadStream] | None = None
        self._warned: set[str] = set()

    def install(self) -> None:
        """Replace sys.stdout and sys.stderr."""
        self._saved = (sys.stdout, sys.stderr)
        self._installed = (_ThreadStream(sys.stdout, self._runs, logging.INFO),
                           _ThreadStream(sys.stderr, self._runs, logging.WARNING))
        sys.stdout, sys.stderr = self._installed

    def uninstall(self) -> None:
        """Put the streams back as they were."""
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = self._installed = None

    def check(self, culprit: str) -> None:
        """After `culprit` ran: if it replaced sys.stdout or sys.stderr (which would take every
        other module's output), put the capture back and say so once per module."""
        installed = self._installed
        if installed is None or (sys.stdout is installed[0] and sys.stderr is installed[1]):
            return
        sys.stdout, sys.stderr = installed
        if culprit not in self._warned:
            self._warned.add(culprit)
            get_logger("autohome.main").warning(
                "module %s replaced sys.stdout or sys.stderr; AutoHome put its own back (what a "
                "module prints is its log's; to write a file, open one)", culprit)

    def current_logger(self) -> logging.Logger | None:
        """The logger of the module whose run is on this thread (None: not a run's thread)."""
        output = self._runs.get(threading.get_ident())
        return None if output is None else output.logger

    def begin(self, output: RunOutput) -> None:
        """From now on, what this thread prints goes to `output`..."""
        self._runs[threading.get_ident()] = output

    def end(self, output: RunOutput) -> None:
        """...until this is called, on the same thread."""
        self._runs.pop(threading.get_ident(), None)
        output.close()
