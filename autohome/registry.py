"""The modules of one folder: found, loaded, and re-loaded when a file changes.

The registry notices edited, added and removed files by their modification time and size
at each tick, and keeps the last good version of a module whose edit broke it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from datetime import timedelta, timezone, tzinfo
from pathlib import Path

from autohome.durations import format_duration
from autohome.loader import BrokenModule, ModuleLoadError, ModuleSpec, load_module
from autohome.logtree import get_logger
from autohome.revision import Revision

log = get_logger("autohome.loader")


IMPORT_TIMEOUT_S = 10.0


def _file_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """File name -> (modification time, size) of each .py file: one directory read and one
    stat per file, since this runs at every tick. Names starting with `_` are helpers."""
    stamps = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".py") and entry.name != "__init__.py" and entry.is_file():
                try:
                    info = entry.stat()
                except OSError:
                    continue  # removed while listing: the next tick sees it
                stamps[entry.name] = (info.st_mtime_ns, info.st_size)
    return stamps


def _import_off_the_tick(paths: dict[str, Path], zone: tzinfo,
                         timeout_s: float) -> dict[str, ModuleSpec | ModuleLoadError]:
    """Import the files each on a thread of its own, waiting for all of them together at most
    `timeout_s`: an import that never ends (a loop or a long sleep at top level) leaves its
    module broken, and neither the tick nor shutdown waits for it (the thread is a daemon)."""
    results: dict[str, ModuleSpec | ModuleLoadError] = {}
    done = threading.Condition()

    def load(name: str, path: Path) -> None:
        try:
            result: ModuleSpec | ModuleLoadError = load_module(path, zone)
        except ModuleLoadError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - a bug in the check itself: that module only
            log.exception("checking %s failed", path)
            result = ModuleLoadError(f"could not be checked: {type(exc).__name__}: {exc}")
        with done:
            results[name] = result
            done.notify_all()

    for name, path in paths.items():
        threading.Thread(target=load, args=(name, path), name=f"import:{name}", daemon=True).start()
    with done:
        done.wait_for(lambda: len(results) == len(paths), timeout_s)
        finished = dict(results)
    late = ModuleLoadError(f"import still running after {format_duration(timedelta(seconds=timeout_s))}: "
                           "a loop or a long wait at the top level of the file? Move it into run()")
    return {name: finished.get(name, late) for name in paths}


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
                 revision: Revision | None = None, import_timeout_s: float = IMPORT_TIMEOUT_S) -> None:
        self.folder = folder
        self.zone = zone
        self.import_timeout_s = import_timeout_s
        self._helpers: dict[str, tuple[int, int]] = {}  # `_name.py` files beside the modules
        self.revision = revision or Revision()  # bumped whenever a file is loaded, reloaded or removed
        self._entries: dict[str, ModuleEntry] = {}
        # Rebuilt only after a change: every tick and every `status` asks for them.
        self._sorted: list[ModuleEntry] | None = None
        self._specs: list[ModuleSpec] | None = None
        self.is_loaded = folder is None  # a registry of given modules has nothing to load
        # The tick and the console's `modules reload` both refresh, one at a time; the console
        # reads meanwhile, and the lock keeps it from seeing a half-changed registry. Imports
        # happen outside the lock, so a slow one never stalls the console.
        self._lock = threading.RLock()
        self._refreshing = threading.Lock()
        # Told the runnable modules whenever they change (RunExecutor.prepare).
        self.on_change: Callable[[list[ModuleSpec]], None] | None = None

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
        changes = Changes()
        if self.folder is None:
            return changes
        with self._refreshing:
            try:
                stamps = _file_stamps(self.folder)
            except OSError as exc:
                log.error("cannot read the modules folder %s: %s", self.folder, exc)
                return changes
            modules = {n[:-3]: stamp for n, stamp in stamps.items() if not n.startswith("_")}
            helpers = {n[:-3]: stamp for n, stamp in stamps.items() if n.startswith("_")}
            helpers_changed = helpers != self._helpers
            if helpers_changed:
                self._use_helpers(helpers)
                self._helpers = helpers
            entries = self._entries
            with self._lock:
                for name in [name for name in entries if name not in modules]:
                    del entries[name]
                    changes.removed.append(name)
                    log.info("module %s removed (its file is gone)", name)
                changed = sorted(name for name, stamp in modules.items()
                                 if helpers_changed or name not in entries or entries[name].stamp != stamp)
            if not changed:
                if changes:
                    with self._lock:
                        self._changed()
                return changes
            results = _import_off_the_tick({name: self.folder / f"{name}.py" for name in changed},
                                           self.zone, self.import_timeout_s)
            with self._lock:
                for name in changed:
                    self._apply(name, modules[name], results[name], changes)
                if changes:
                    self._changed()
        return changes

    def _changed(self) -> None:
        # Called with the lock held, after a change of any entry.
        self._specs = self._sorted = None
        self.revision.bump()
        if self.on_change is not None:
            self.on_change(self.specs())

    def _use_helpers(self, helpers: dict[str, tuple[int, int]]) -> None:
        """`import _helpers` in a module finds the folder's helpers, as they are now (called
        before self._helpers takes the new stamps)."""
        assert self.folder is not None
        folder = str(self.folder)
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        for name in set(helpers) | set(self._helpers):
            sys.modules.pop(name, None)  # imported afresh by the modules reloaded below
        if self._helpers:
            log.info("helper files changed (%s): reloading every module", ", ".join(sorted(helpers)))

    def _apply(self, name: str, stamp: tuple[int, int], result: ModuleSpec | ModuleLoadError,
               changes: Changes) -> None:
        assert self.folder is not None
        entry = self._entries.get(name)
        is_new = entry is None
        if entry is None:
            entry = self._entries[name] = ModuleEntry(name, self.folder / f"{name}.py")
        entry.stamp = stamp
        if isinstance(result, ModuleLoadError):
            entry.problem = str(result)
            changes.broken.append(name)
            if entry.spec is None:
                log.error("module %s is broken and will not run: %s (fix %s)", name, result, entry.path)
            else:
                log.error("module %s: the edit broke it, the last good version keeps running: %s "
                          "(fix %s)", name, result, entry.path)
            return
        entry.spec, entry.problem = result, ""
        (changes.added if is_new else changes.reloaded).append(name)
        if not is_new:
            log.info("module %s reloaded from %s", name, entry.path)

    def mark_broken(self, name: str, problem: str) -> None:
        """Take a module out of the running (its next run cannot be computed, say) until its
        file changes."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.spec is None:
                return
            entry.spec, entry.problem = None, problem
            self._changed()
        log.error("module %s is broken and will not run: %s (fix %s)", name, problem, entry.path)


def discover_modules(folder: Path, zone: tzinfo = timezone.utc) -> ModuleRegistry:
    """Load every module in the folder; broken ones are logged and kept as broken entries."""
    registry = ModuleRegistry(folder, zone)
    registry.load()
    return registry
