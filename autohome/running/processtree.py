"""A child process and everything it started, found and signalled together; its pipes
read until they end or until the reader is told to stop.

POSIX: the signal goes to the child's process group and to every process found below the
child. On Linux the child is a child subreaper (child.py), so a process that left the group
(a new session, a double fork) is still found below it; on macOS such a process is found
only while its parent lives. Windows: the child and what is found below it are ended
(TerminateProcess: there is no gentler signal to send).
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any

KILL = signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM


class ProcessTree:
    """One child process and what is found below it; each signal looks again, and keeps
    what it found, so a process whose parent died meanwhile is still signalled."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._found: dict[int, Any] = {}  # psutil processes, by pid
        self._lock = threading.Lock()

    def signal(self, signum: int) -> None:
        """Send `signum` to everything below the child, then to the child's process group."""
        for found in self._below():
            try:
                found.send_signal(signum) if os.name == "posix" else found.kill()
            except Exception:  # noqa: BLE001 - psutil's NoSuchProcess, AccessDenied: gone, or not ours
                pass
        try:
            if sys.platform == "win32":
                self.process.kill() if signum != signal.SIGTERM else self.process.terminate()
            else:
                os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    def _below(self) -> list[Any]:
        try:
            import psutil  # only when a run is stopped
        except ImportError:  # pragma: no cover - a dependency; without it the group is still signalled
            return []
        with self._lock:
            try:
                for found in psutil.Process(self.process.pid).children(recursive=True):
                    self._found.setdefault(found.pid, found)
            except psutil.Error:
                pass  # the child is gone: what was found before is still signalled
            return list(self._found.values())


class PipeStop:
    """Tells `read_chunks` to stop: an event that a selector can wait on beside a pipe."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()

    def fileno(self) -> int:
        """Readable once set (for `selectors`)."""
        return self._read.fileno()

    def set(self) -> None:
        """Raise it, for good."""
        try:
            self._write.send(b"x")
        except OSError:
            pass  # closed: the run is over

    def close(self) -> None:
        """Release its sockets."""
        self._read.close()
        self._write.close()


def read_chunks(stream: IO[bytes], done: PipeStop, size: int) -> Iterable[bytes]:
    """What the child writes to one pipe, as it comes, until its end or until `done` is set
    (POSIX; on Windows a pipe cannot be waited on beside anything else, so until its end)."""
    if sys.platform == "win32":
        yield from iter(lambda: stream.read1(size), b"")  # type: ignore[attr-defined]
        return
    descriptor = stream.fileno()
    os.set_blocking(descriptor, False)
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        selector.register(done, selectors.EVENT_READ)
        while True:
            try:
                chunk = os.read(descriptor, size)
            except BlockingIOError:
                if any(key.fileobj is done for key, _ in selector.select()):
                    return
                continue
            if not chunk:
                return
            yield chunk
