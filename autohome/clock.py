"""The clocks: the only code in AutoHome that reads the time or waits for it.

`SystemClock` is the real one. `VirtualClock` is `--test` mode: instead of
sleeping it reads a line from standard input. `FakeClock` is stepped by tests.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autohome.durations import parse_duration

log = logging.getLogger(__name__)

TEST_MODE_HELP = (
    "Enter = next tick, a number N = N ticks, a duration (10m, 2h) = that much time, "
    "'sleep 8h' = jump like a sleeping laptop, Ctrl-D = shut down"
)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def system_zone(environ: Mapping[str, str] | None = None) -> tzinfo:
    """The machine's time zone, with its daylight-saving rules where they can be found.

    Tries $TZ, then the /etc/localtime link; falls back to today's fixed UTC offset
    (which misses DST changes: set AUTOHOME_TIMEZONE then).
    """
    environ = os.environ if environ is None else environ
    candidates = [environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    log.warning("could not find this machine's time zone rules; set AUTOHOME_TIMEZONE "
                "(for example Europe/Berlin) so AT and CRON schedules follow daylight saving")
    return datetime.now().astimezone().tzinfo or timezone.utc


def stopwatch() -> Callable[[], float]:
    """Start a stopwatch; calling the result gives the real seconds elapsed, even in test mode."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


class Clock(Protocol):
    """What the daemon needs from time: read it, and wait for it."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Wait until `deadline` or until `stop` is set; return whether to stop."""
        ...

    def wake(self) -> None:
        """Make a pending `sleep_until` notice that `stop` was set."""
        ...


class Waker:
    """What the main thread sleeps on: a socket pair that another thread, or a signal
    (through signal.set_wakeup_fd), can make readable.

    Sleeping on an Event is not enough: a signal delivered to some other thread does not
    interrupt the main thread's wait, so Ctrl-C or SIGTERM would go unnoticed for a tick.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = socket.socketpair()
        self._read_end.setblocking(False)
        self._write_end.setblocking(False)

    @property
    def signal_fd(self) -> int:
        """The descriptor to hand to signal.set_wakeup_fd."""
        return self._write_end.fileno()

    def wait(self, timeout_s: float | None) -> None:
        """Sleep until woken or until the timeout (None: no timeout)."""
        select.select([self._read_end], [], [], timeout_s)
        try:
            while self._read_end.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass  # drained

    def wake(self) -> None:
        """Wake the sleeper (safe from any thread; a full buffer already means 'awake')."""
        try:
            self._write_end.send(b"\0")
        except OSError:
            pass  # BlockingIOError: plenty of wake-ups are already pending

    def close(self) -> None:
        """Release the sockets."""
        self._read_end.close()
        self._write_end.close()


class SystemClock:
    """Real time. Waiting is on a Waker, so shutdown and signals never wait for a tick."""

    def __init__(self, waker: Waker | None = None) -> None:
        self.waker = waker or Waker()

    def now(self) -> datetime:
        """The current wall-clock time."""
        return utc_now()

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Sleep until the deadline, or until woken with `stop` set."""
        while not stop.is_set():
            remaining_s = (deadline - self.now()).total_seconds()
            if remaining_s <= 0:
                return False
            self.waker.wait(remaining_s)
        return True

    def wake(self) -> None:
        """Interrupt a sleep so that the stop event is seen."""
        self.waker.wake()


class FakeClock:
    """A clock that tests move by hand; waiting moves it straight to the deadline."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        """The time the test set."""
        return self.current

    def advance(self, seconds: float) -> None:
        """Move time forward (or backward, with a negative number)."""
        self.current += timedelta(seconds=seconds)

    def sleep_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Jump to the deadline without sleeping."""
        self.current = max(self.current, deadline)
        return stop.is_set()

    def wake(self) -> None:
        """Nothing blocks, so nothing to wake."""


class LineFeed:
    """Lines from a stream, read on a daemon thread so a stop can interrupt the wait."""

    def __init__(self, stream: IO[str], waker: Waker | None = None) -> None:
        self._stream = stream
        self.waker = waker or Waker()
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._reader: threading.Thread | None = None

    def get(self) -> str | None:
        """The next line without its newline, or None at end of input or after close()."""
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


class VirtualClock:
    """`--test` mode: time starts now and moves only when the user types a line.

    An empty line releases one tick, `N` releases N ticks, and a duration lets
    time run that far, stopping at every tick boundary on the way.
    """

    def __init__(
        self,
        start: datetime,
        feed: LineFeed,
        prompt: Callable[[str], None] | None = None,
    ) -> None:
        self.current = start
        self._feed = feed
        self._prompt = prompt
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
                self.current = max(self.current, deadline)
                return False
            if self._horizon >= deadline:
                self.current = max(self.current, deadline)
                return False
            self.current = max(self.current, self._horizon)
            if not self._read_step():
                return True
        return True

    def wake(self) -> None:
        """Stop waiting for input."""
        self._feed.close()

    def _read_step(self) -> bool:
        """Read lines until one releases time; False at end of input."""
        while True:
            if self._prompt is not None:
                self._prompt(f"[{self.current.astimezone():%Y-%m-%d %H:%M:%S}] > ")
            line = self._feed.get()
            if line is None:
                log.info("test mode: end of input, shutting down")
                return False
            text = line.strip()
            if not text:
                self._ticks_released = 1
                return True
            if text.isdigit() and int(text) > 0:
                self._ticks_released = int(text)
                return True
            if text.lower().startswith("sleep "):
                # The laptop sleeps: time jumps without ticking on the way, then one tick.
                try:
                    self.current += parse_duration(text[6:])
                except ValueError:
                    log.warning("test mode: cannot read %r: %s", text, TEST_MODE_HELP)
                    continue
                self._horizon = self.current
                self._ticks_released = 1
                return True
            try:
                self._horizon = self.current + parse_duration(text)
                return True
            except ValueError:
                log.warning("test mode: cannot read %r: %s", text, TEST_MODE_HELP)


def terminal_prompt(
    stream: IO[str] = sys.stderr, before: Callable[[], None] = lambda: None
) -> Callable[[str], None] | None:
    """A prompt writer for an interactive terminal, or None when input is piped.

    `before` runs first: the log writer's flush, so that the tick's lines come above the prompt.
    """
    if not sys.stdin.isatty():
        return None

    def write(text: str) -> None:
        before()
        stream.write(text)
        stream.flush()

    return write
