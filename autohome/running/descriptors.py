"""AutoHome's own open files and sockets, watched: a module that closes them (`os.closerange`)
would leave a daemon that lives on deaf, its console refused and its database closed.
Checked after each thread run and each tick; when one is gone (or its number now belongs
to another file), AutoHome says so and exits with code 1, so that a service restarts it.

POSIX only: on Windows sockets are not file descriptors, and nothing is watched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from autohome.logs.tree import get_logger

log = get_logger("autohome.main")


class OwnDescriptors:
    """The descriptors AutoHome opened and must keep: what each is, and which file it was."""

    def __init__(self, on_lost: Callable[[], None] = lambda: None) -> None:
        self._known: dict[int, tuple[str, int, int]] = {}
        self._on_lost = on_lost  # StopRequest.request, with exit code 1
        self.lost: list[str] = []

    def add(self, what: str, descriptor: int | None) -> None:
        """Watch `descriptor`, described as `what` ("the console's socket")."""
        if os.name != "posix" or descriptor is None or descriptor < 0:
            return
        try:
            info = os.fstat(descriptor)
        except OSError:
            return
        self._known[descriptor] = (what, info.st_dev, info.st_ino)

    def add_database(self, path: Path) -> None:
        """Watch the state database's own descriptor (Linux: found in /proc; elsewhere the
        other descriptors stand for it)."""
        if not sys.platform.startswith("linux"):
            return
        target = str(path.resolve())
        try:
            for name in os.listdir("/proc/self/fd"):
                if os.readlink(f"/proc/self/fd/{name}") == target:
                    self.add("the state database", int(name))
        except OSError:
            pass  # no /proc: nothing more to watch

    def check(self, culprit: str | None = None) -> bool:
        """Whether every watched descriptor is still the file it was. If not, log which are
        gone (once) and call `on_lost`."""
        if not self._known:
            return True
        gone = []
        for descriptor, (what, device, inode) in self._known.items():
            try:
                info = os.fstat(descriptor)
            except OSError:
                gone.append(what)
                continue
            if (info.st_dev, info.st_ino) != (device, inode):
                gone.append(what)
        if not gone:
            return True
        if not self.lost:
            self.lost = gone
            log.critical("AutoHome's own files and sockets were closed (%s)%s; it cannot go on deaf, so "
                         "it exits with code 1 (a service restarts it). A module must not close descriptors "
                         "it did not open (os.closerange, os.close)", ", ".join(dict.fromkeys(gone)),
                         f" by module {culprit}" if culprit and "," not in culprit
                         else f" by one of the modules running: {culprit}" if culprit else " by a module")
            self._known.clear()
            self._on_lost()
        return False
