"""One AutoHome per state database: an operating-system file lock, which a crash releases.

flock() on Linux and macOS, msvcrt.locking() on Windows, taken on `<database>.lock`. (The
filelock package does the same, but its import alone costs more than all of AutoHome's
start-up before the console listens.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autohome.errors import AutoHomeError


class AlreadyRunning(AutoHomeError):
    """Another AutoHome holds this state database."""


class InstanceLock:
    """Holds `<database>.lock` while AutoHome runs, with the PID in `<database>.pid` so that a
    second AutoHome can say who holds it. A process killed with -9 holds nothing: the lock
    is the kernel's, not the file's existence."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.lock_file = database.with_name(database.name + ".lock")
        self.pid_file = database.with_name(database.name + ".pid")
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the folder and the PID that holds it."""
        descriptor = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(descriptor):
            os.close(descriptor)
            try:
                holder = self.pid_file.read_text(encoding="utf-8").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise AlreadyRunning(
                f"another AutoHome (PID {holder}) is running on {self.database.parent} "
                f"({self.database.name}); stop it first, or give this one its own folder with "
                "AUTOHOME_DATA_DIR (or --data)")
        self._descriptor = descriptor
        self.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")

    @property
    def descriptor(self) -> int | None:
        """The lock file's descriptor while the lock is held."""
        return self._descriptor

    def release(self) -> None:
        """Let go of the lock."""
        if self._descriptor is None:
            return
        self.pid_file.unlink(missing_ok=True)
        try:
            os.close(self._descriptor)  # closing the descriptor releases the lock
        except OSError:
            pass  # closed under it (descriptors.py): the lock went with it
        self._descriptor = None


def _try_lock(descriptor: int) -> bool:
    """Lock the whole file without waiting; False if another process holds it."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
