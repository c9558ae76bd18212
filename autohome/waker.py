"""What the main thread sleeps on: a socket pair that another thread, or a signal, can make
readable (see Waker)."""

from __future__ import annotations

import select
import socket


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

    def descriptors(self) -> tuple[int, int]:
        """Its two sockets' descriptors (for descriptors.py)."""
        return self._read_end.fileno(), self._write_end.fileno()

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
        """Release the sockets (closed under it already, if a module closed them)."""
        for end in (self._read_end, self._write_end):
            try:
                end.close()
            except OSError:
                pass
