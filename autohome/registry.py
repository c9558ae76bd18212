"""The modules of one folder: found, loaded, and re-loaded when a file changes.

The registry notices edited, added and removed files by their modification time and size
at each tick, and keeps the last good version of a module whose edit broke it.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timezone, tzinfo
from pathlib import Path

from autohome.loader import BrokenModule, ModuleLoadError, ModuleSpec, load_module
from autohome.revision import Revision

log = logging.getLogger("autohome.loader")


def _module_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """File name -> (modification time, size) of each module file: one directory read and
    one stat per file, since this runs at every tick."""
    stamps = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".py") and not entry.name.startswith("_") and entry.is_file():
                try:
                    info = entry.stat()
                except OSError:
                    continue  # removed while listing: the next tick sees it
                stamps[entry.name] = (info.st_mtime_ns, info.st_size)
    return stamps


class ModuleEntry:
    """One module file: what runs (the last good version), and what is wrong, if anything."""

    def __init__(self, name: str, path: Path, stamp: tuple[int, int] = (0, 0),
                 spec: ModuleSpec | None = None, problem: str = "") -> None:
        self.name = name
        self.path = path
        self.stamp = stamp
        self.spec = spec
        self.problem = problem

    @property
    def is_runnable(self) -> bool:
        """Whether some version of the module can run."""
        return self.spec is not None


class Changes:
    """What a refresh found."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.reloaded: list[str] = []
        self.broken: list[str] = []
        self.removed: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.added or self.reloaded or self.broken or self.removed)

    def describe(self) -> str:
        """'added: a; broken: b', or that nothing changed."""
        parts = [f"{label}: {', '.join(names)}" for label, names in (
            ("added", self.added), ("reloaded", self.reloaded),
            ("broken", self.broken), ("removed", self.removed)) if names]
        return "; ".join(parts) or "no module files changed"


class ModuleRegistry:
    """The modules of one folder, re-read when a file's modification time or size changes."""

    def __init__(self, folder: Path | None, zone: tzinfo = timezone.utc,
                 revision: Revision | None = None) -> None:
        self.folder = folder
        self.zone = zone
        self.revision = revision or Revision()  # bumped whenever a file is loaded, reloaded or removed
        self._entries: dict[str, ModuleEntry] = {}
        # Rebuilt only after a change: every tick and every `status` asks for them.
        self._sorted: list[ModuleEntry] | None = None
        self._specs: list[ModuleSpec] | None = None
        self.is_loaded = folder is None  # a registry of given modules has nothing to load
        # The tick and the console's `modules reload` both refresh, and the console reads
        # while they do: one lock keeps them from seeing a half-changed registry.
        self._lock = threading.RLock()

    @classmethod
    def of(cls, items: list[ModuleSpec | BrokenModule]) -> ModuleRegistry:
        """A fixed registry with no folder behind it (tests, benchmarks)."""
        registry = cls(None)
        for item in items:
            if isinstance(item, BrokenModule):
                registry._entries[item.name] = ModuleEntry(item.name, item.path, problem=item.reason)
            else:
                registry._entries[item.name] = ModuleEntry(item.name, item.path, spec=item)
        return registry

    def entries(self) -> list[ModuleEntry]:
        """Every module, sorted by name."""
        with self._lock:
            if self._sorted is None:
                self._sorted = [self._entries[name] for name in sorted(self._entries)]
            return self._sorted

    def counts(self) -> tuple[int, int]:
        """How many modules can run, and how many are broken."""
        entries = self.entries()
        runnable = len(self.specs())
        return runnable, len(entries) - runnable

    def get(self, name: str) -> ModuleEntry | None:
        """One module by name."""
        return self._entries.get(name)

    def spec_of(self, name: str) -> ModuleSpec | None:
        """The runnable version of one module, if it has one."""
        entry = self._entries.get(name)
        return None if entry is None else entry.spec

    def specs(self) -> list[ModuleSpec]:
        """The modules that can run (the last good version where an edit broke one)."""
        with self._lock:
            if self._specs is None:
                self._specs = [entry.spec for entry in self.entries() if entry.spec is not None]
            return self._specs

    def load(self) -> Changes:
        """The first refresh: load every file, and log how many loaded and how many are broken."""
        changes = self.refresh()
        self.is_loaded = True
        runnable, broken = self.counts()
        log.info("loaded %d module(s) from %s, %d broken", runnable, self.folder, broken)
        return changes

    def refresh(self) -> Changes:
        """Load new and changed files, forget removed ones; log what happened."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> Changes:
        changes = Changes()
        if self.folder is None:
            return changes
        try:
            stamps = {file_name[:-3]: stamp for file_name, stamp in _module_stamps(self.folder).items()}
        except OSError as exc:
            log.error("cannot read the modules folder %s: %s", self.folder, exc)
            return changes
        entries = self._entries
        for name in [name for name in entries if name not in stamps]:
            del entries[name]
            changes.removed.append(name)
            log.info("module %s removed (its file is gone)", name)
        changed = [name for name, stamp in stamps.items()
                   if name not in entries or entries[name].stamp != stamp]
        for name in sorted(changed):
            self._load(name, self.folder / f"{name}.py", stamps[name], entries.get(name), changes)
        if changes:
            self._specs = self._sorted = None
            self.revision.bump()
        return changes

    def _load(self, name: str, path: Path, stamp: tuple[int, int], entry: ModuleEntry | None,
              changes: Changes) -> None:
        is_new = entry is None
        if entry is None:
            entry = self._entries[name] = ModuleEntry(name, path)
        entry.stamp = stamp
        try:
            entry.spec = load_module(path, self.zone)
        except ModuleLoadError as exc:
            entry.problem = str(exc)
            changes.broken.append(name)
            if entry.spec is None:
                log.error("module %s is broken and will not run: %s (fix %s)", name, exc, path)
            else:
                log.error("module %s: the edit broke it, the last good version keeps running: %s "
                          "(fix %s)", name, exc, path)
            return
        entry.problem = ""
        (changes.added if is_new else changes.reloaded).append(name)
        if not is_new:
            log.info("module %s reloaded from %s", name, path)


def discover_modules(folder: Path, zone: tzinfo = timezone.utc) -> ModuleRegistry:
    """Load every module in the folder; broken ones are logged and kept as broken entries."""
    registry = ModuleRegistry(folder, zone)
    registry.load()
    return registry
