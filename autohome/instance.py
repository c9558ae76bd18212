"""One AutoHome per state database: an operating-system file lock, which a crash releases."""

from __future__ import annotations

import os
from pathlib import Path

from autohome.errors import AutoHomeError


class AlreadyRunning(AutoHomeError):
    """Another AutoHome holds this state database."""


class InstanceLock:
    """Holds `<database>.lock` while AutoHome runs, with the PID in `<database>.pid` so that a
    second AutoHome can say who holds it. A process killed with -9 holds nothing: the lock
    is the kernel's, not the file's existence."""

    def __init__(self, database: Path) -> None:
        from filelock import FileLock  # imported with the first start-up that needs it

        self.database = database
        self.pid_file = database.with_name(database.name + ".pid")
        self._lock = FileLock(str(database.with_name(database.name + ".lock")), timeout=0)

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the folder and the PID that holds it."""
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self.pid_file.read_text(encoding="utf-8").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise AlreadyRunning(
                f"another AutoHome (PID {holder}) is running on {self.database.parent} "
                f"({self.database.name}); stop it first, or give this one its own folder with "
                "AUTOHOME_DATA_DIR (or --data)") from None
        self.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")

    def release(self) -> None:
        """Let go of the lock."""
        self.pid_file.unlink(missing_ok=True)
        self._lock.release()
