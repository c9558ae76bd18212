"""Test mode's clock: virtual time that moves only when the user types a line."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import IO, Any

from autohome.clock import ClockBase, Waker
from autohome.durations import DURATION_HELP, parse_duration
from autohome.logs.tree import get_logger

log = get_logger("autohome.clock")

MAX_TICKS = 100_000
QUOTE_LIMIT = 200  # characters of a rejected line that the log repeats
TEST_DURATIONS = 'a duration such as "45s", "2.5s", "10m", "2h"'
TEST_MODE_HELP = (
    "Enter = next tick, a number N = N ticks, a duration (10m, 2h) = that much time, "
    "'sleep 8h' = jump like a sleeping laptop, Ctrl-D = shut down"
)


class LineFeed:
    """Lines from a stream, read on a daemon thread so a stop can interrupt the wait."""

    def __init__(self, stream: IO[str], waker: Waker | None = None,
                 prompt: Callable[[str], None] | None = None) -> None:
        self._stream = stream
        self.waker = waker or Waker()
        self._prompt = prompt  # shows the prompt at a terminal (None: input is piped)
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None

    def get(self, prompt: str = "") -> str | None:
        """The next line without its newline, or None at end of input or after close()."""
        if self._prompt is not None:
            self._prompt(prompt)
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, name="stdin", daemon=True)
            self._reader.start()
        while True:
            try:
                return self._lines.get_nowait()
            except queue.Empty:
                self.waker.wait(None)  # woken by a line, by close(), or by a signal

    def close(self) -> None:
        """Unblock a pending get(); the reader itself may stay blocked in read()."""
        self._lines.put(None)
        self.waker.wake()

    def _read(self) -> None:
        # Daemon thread: a blocked read() on a terminal cannot be interrupted portably.
        for line in self._stream:
            self._lines.put(line.rstrip("\r\n"))
            self.waker.wake()
        self._lines.put(None)
        self.waker.wake()


class VirtualClock(ClockBase):
    """`--test` mode: time starts now and moves only when the user types a line.

    An empty line releases one tick, `N` releases N ticks, and a duration lets
    time run that far, stopping at every tick boundary on the way.
    """

    def __init__(self, start: datetime, feed: LineFeed, zone: tzinfo | None = None) -> None:
        super().__init__()
        self.current = start
        self._feed = feed
        self._zone = zone  # the prompt shows time in AutoHome's zone (None: the machine's)
        self._ticks_released = 0
        self._horizon = start

    def now(self) -> datetime:
        """Virtual time."""
        return self.current

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Move to the deadline once the user has released that much time."""
        while not stop.is_set():
            if self._ticks_released > 0:
                self._ticks_released -= 1
                self._move_to(deadline)
                return False
            if self._horizon >= deadline:
                self._move_to(deadline)
                return False
            self._move_to(self._horizon)
            if not self._read_step():
                return True
        return True

    def _move_to(self, moment: datetime) -> None:
        self.current = max(self.current, moment)
        self._moved()

    def wake(self) -> None:
        """Stop waiting for input."""
        self._feed.close()

    def _read_step(self) -> bool:
        """Read lines until one releases time; False at end of input."""
        while True:
            line = self._feed.get(f"[{self.current.astimezone(self._zone):%Y-%m-%d %H:%M:%S}] > ")
            if line is None:
                log.info("test mode: end of input, shutting down")
                return False
            text = line.strip()
            if not text:
                self._ticks_released = 1
                return True
            try:
                if self._take(text):
                    return True
            except (ValueError, OverflowError) as exc:
                shown = text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "..."
                log.warning("test mode: cannot read %r (%s); time stays at %s. %s", shown, exc,
                            self.current.isoformat(timespec="seconds"), TEST_MODE_HELP)

    def _take(self, text: str) -> bool:
        """Release the time a line asks for; raise ValueError saying why it cannot."""
        if text.isdigit():
            if len(text) > 6 or not 0 < int(text) <= MAX_TICKS:
                raise ValueError(f"a number of ticks from 1 to {MAX_TICKS}")
            self._ticks_released = int(text)
            return True
        if text.lower().startswith("sleep "):
            # The laptop sleeps: time jumps without ticking on the way, then one tick.
            self._move_to(self.current + _duration(text[6:]))
            self._horizon = self.current
            self._ticks_released = 1
            return True
        self._horizon = self.current + _duration(text)
        return True


def _duration(text: str) -> timedelta:
    """A typed duration. Unlike a setting, it needs its unit: a bare number means ticks."""
    try:
        float(text)
    except ValueError:
        pass
    else:
        raise ValueError("a bare number moves that many ticks (a whole number from 1); give time with "
                         f"its unit: {TEST_DURATIONS}")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(str(exc).replace(DURATION_HELP, TEST_DURATIONS)) from None


def typed_lines(stdin: IO[str], stream: IO[str], waker: Waker,
               before: Callable[[], None] = lambda: None) -> LineFeed:
    """Where test mode's lines come from: readline at a terminal where Python has it (editing,
    up-arrow), a plain prompt at other terminals, and no prompt when input is piped.

    `before` runs before each prompt: the log writer's flush, so the tick's lines come above it.
    """
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        return LineFeed(stdin, waker)
    if stdin is sys.stdin and sys.stdout.isatty():
        try:
            import readline  # noqa: F401 - importing it is what makes input() edit lines
        except ImportError:
            pass  # Windows: the console's own line editing serves
        else:
            return ReadlineFeed(stdin, waker, before)

    def write(text: str) -> None:
        before()
        stream.write(text)
        stream.flush()

    return LineFeed(stdin, waker, prompt=write)


class ReadlineFeed(LineFeed):
    """Lines typed at input()'s prompt, with readline's editing and history; asked for one at a
    time, so each prompt shows the time it stands for."""

    def __init__(self, stream: IO[str], waker: Waker, before: Callable[[], None]) -> None:
        super().__init__(stream, waker)
        self._before = before
        self._asks: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._terminal = _terminal_state(stream)

    def get(self, prompt: str = "") -> str | None:
        """Flush the log, then have input() show the prompt and read a line."""
        self._before()
        self._asks.put(prompt)
        return super().get()

    def close(self) -> None:
        """Unblock get(); input() may stay blocked, so give the terminal back its settings."""
        super().close()
        if self._terminal is not None:
            import termios

            fd, attributes = self._terminal
            try:
                termios.tcsetattr(fd, termios.TCSADRAIN, attributes)
            except termios.error:
                pass  # the terminal is gone

    def _read(self) -> None:
        while True:
            prompt = self._asks.get()
            try:
                line: str | None = input(prompt)
            except EOFError:
                line = None
            self._lines.put(line)
            self.waker.wake()
            if line is None:
                return


def _terminal_state(stream: IO[str]) -> tuple[int, list[Any]] | None:
    """The terminal's settings, to restore if AutoHome stops while readline holds it."""
    try:
        import termios
    except ImportError:
        return None
    try:
        return stream.fileno(), termios.tcgetattr(stream.fileno())
    except (OSError, ValueError, termios.error):
        return None
