"""The terminal as a consumer that can fall behind: AutoHome's lines reach it from a thread
of its own, so a terminal that stops reading (a pipe nobody reads, Ctrl-S in its window)
never holds up current.log, the console or a shutdown. What it cannot take in time is
dropped, oldest first, and counted on the terminal once it reads again."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

MAX_WAITING_CHARS = 1_000_000  # of lines waiting for the terminal; past that the oldest go


class TerminalHandler(logging.Handler):
    """Formats lines on the log writer's thread and leaves them for the `terminal` thread."""

    def __init__(self, stream: IO[str], reopen: Callable[[], IO[str]] | None = None,
                 max_chars: int = MAX_WAITING_CHARS) -> None:
        super().__init__()
        self.stream = stream
        self._reopen = reopen  # a stream of AutoHome's own that a module closed is opened again, once
        self.max_chars = max_chars
        self._waiting: deque[str] = deque()
        self._chars = 0
        self.dropped = 0  # lines the terminal did not take in time, not yet told
        self.lost = 0  # lines the stream refused (closed, gone)
        self._ready = threading.Condition()
        self._closing = False
        self._writing = False  # the thread has lines in hand
        self._thread = threading.Thread(target=self._write, name="terminal", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the line; if the terminal is behind by more than max_chars, drop the oldest."""
        line = self.format(record) + "\n"
        with self._ready:
            self._waiting.append(line)
            self._chars += len(line)
            while self._chars > self.max_chars and len(self._waiting) > 1:
                self._chars -= len(self._waiting.popleft())
                self.dropped += 1

    def say(self, text: str) -> None:
        """Queue text of AutoHome's own (about the log file itself) for the terminal."""
        with self._ready:
            self._waiting.append(text if text.endswith("\n") else text + "\n")
            self._chars += len(text)
            self._ready.notify_all()

    def flush(self) -> None:
        """The batch is queued: let the terminal thread write it."""
        with self._ready:
            self._ready.notify_all()

    def wait_written(self, timeout_s: float = 1.0) -> bool:
        """Wait until the lines queued so far are on the terminal (test mode's prompt comes
        after the tick's lines); a terminal that does not read is waited for `timeout_s` only."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._waiting and not self._writing, timeout_s)

    def close(self) -> None:
        """Nothing: a module's logging.config.dictConfig() closes every handler in the
        process, and AutoHome's terminal must outlive that. AutoHome ends it with stop()."""

    def stop(self, timeout_s: float = 1.0) -> None:
        """Write what waits, if the terminal takes it within `timeout_s`; never longer."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        self._thread.join(timeout_s)
        super().close()

    @property
    def is_stuck(self) -> bool:
        """Whether the terminal thread is still blocked on a terminal that does not read."""
        return self._thread.is_alive()

    def _write(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._waiting or self._closing)
                if not self._waiting:
                    return
                lines, dropped = list(self._waiting), self.dropped
                self._waiting.clear()
                self._chars = self.dropped = 0
                self._writing = True
            if dropped:
                lines.insert(0, f"[{dropped} log line(s) not shown here: this terminal was not reading; "
                                "all are in the log file]\n")
            self._put("".join(lines), len(lines))
            with self._ready:
                self._writing = False
                self._ready.notify_all()

    def _put(self, text: str, count: int) -> None:
        for attempt in (1, 2):
            try:
                self.stream.write(text)
                self.stream.flush()
                return
            except (OSError, ValueError):
                reopen, self._reopen = self._reopen, None
                if attempt == 2 or reopen is None:
                    break
                try:
                    self.stream = reopen()
                except OSError:
                    break
        self.lost += count
