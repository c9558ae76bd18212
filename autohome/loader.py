"""Finding, importing and re-importing user modules (`modules/<name>.py`).

A module defines one schedule (INTERVAL, AT or CRON) and run(log, notify) or
run(log, notify, store). The registry notices edited, added and removed files by
their modification time at each tick, and keeps the last good version of a module
whose edit broke it.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from autohome.durations import parse_duration
from autohome.schedule import IntervalSchedule, Schedule, parse_at, parse_cron

log = logging.getLogger(__name__)

MODULE_CONTRACT = 'define INTERVAL (e.g. "5m"), AT (e.g. "08:00") or CRON, and def run(log, notify)'
SCHEDULE_NAMES = ("INTERVAL", "AT", "CRON")
# What run() may ask for, by parameter name.
GIVEN = ("log", "notify", "store", "config")


@dataclass(frozen=True)
class ModuleSpec:
    """A user module that loaded: what to run and when."""

    name: str
    path: Path
    schedule: Schedule
    run: Callable[..., Any]
    description: str = ""
    timeout: timedelta | None = None  # None: AUTOHOME_MODULE_TIMEOUT
    wants: tuple[str, ...] = ("log", "notify")  # what run() is handed, in order
    requires: tuple[str, ...] = ()  # settings that must be set for the module to run

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""


@dataclass(frozen=True)
class BrokenModule:
    """A module file that could not be used, and why."""

    name: str
    path: Path
    reason: str


class ModuleLoadError(Exception):
    """A module file is unusable; the message says why and how to fix it."""


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


def _where(exc: BaseException, path: Path) -> str:
    """' at line N' for the deepest frame of the traceback inside the module file."""
    if isinstance(exc, SyntaxError):
        return ""  # its message already names the line
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if Path(frame.filename) == path]
    return f" at line {lines[-1]}" if lines else ""


def _schedule(module: Any, zone: tzinfo) -> Schedule:
    given = [name for name in SCHEDULE_NAMES if hasattr(module, name)]
    if not given:
        raise ModuleLoadError(f"INTERVAL is missing: {MODULE_CONTRACT}")
    if len(given) > 1:
        raise ModuleLoadError(f"{' and '.join(given)} are both set: define exactly one schedule")
    try:
        if given[0] == "AT":
            return parse_at(module.AT, zone)
        if given[0] == "CRON":
            return parse_cron(module.CRON, zone)
        return IntervalSchedule(parse_duration(module.INTERVAL))
    except ValueError as exc:
        raise ModuleLoadError(f"{given[0]} {exc}") from None


def _wants(run: Callable[..., Any]) -> tuple[str, ...]:
    """What to hand run(): its parameters if all are known names (log, notify, store, config,
    in any order), else log and notify (and store for a third parameter) by position."""
    try:
        signature = inspect.signature(run)
    except ValueError:
        return ("log", "notify")  # builtins without a signature: let them try
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = tuple(p.name for p in signature.parameters.values() if p.kind in positional)
    if names and set(names) <= set(GIVEN) and len(set(names)) == len(names):
        return names
    for args in (("log", "notify", "store"), ("log", "notify")):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return args if len(names) >= len(args) else ("log", "notify")
    raise ModuleLoadError("run must accept (log, notify), optionally with store and config")


def _requires(module: Any) -> tuple[str, ...]:
    value = getattr(module, "REQUIRES", ())
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ModuleLoadError('REQUIRES must name settings, such as REQUIRES = ["AUTOHOME_WATCH_URLS"]')
    return tuple(items)


def load_module(path: Path, zone: tzinfo = timezone.utc) -> ModuleSpec:
    """Import one module file and check its contract; raise ModuleLoadError if it breaks it."""
    name = path.stem
    import_name = f"autohome_modules.{name}"
    spec = importlib.util.spec_from_file_location(import_name, path)
    if spec is None or spec.loader is None:
        raise ModuleLoadError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(import_name)
    sys.modules[import_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of user code is reported
        if previous is None:
            sys.modules.pop(import_name, None)
        else:
            sys.modules[import_name] = previous
        raise ModuleLoadError(f"import failed{_where(exc, path)}: {type(exc).__name__}: {exc}") from exc

    schedule = _schedule(module, zone)
    run = getattr(module, "run", None)
    if not callable(run):
        raise ModuleLoadError(f"run is missing or not a function: {MODULE_CONTRACT}")
    wants = _wants(run)
    timeout = None
    if hasattr(module, "TIMEOUT"):
        try:
            timeout = parse_duration(module.TIMEOUT)
        except ValueError as exc:
            raise ModuleLoadError(f"TIMEOUT {exc}") from None
    description = inspect.cleandoc(module.__doc__) if module.__doc__ else ""
    return ModuleSpec(name, path, schedule, run, description, timeout, wants, _requires(module))


@dataclass
class ModuleEntry:
    """One module file: what runs (the last good version), and what is wrong, if anything."""

    name: str
    path: Path
    stamp: tuple[int, int] = (0, 0)
    spec: ModuleSpec | None = None
    problem: str = ""

    @property
    def is_runnable(self) -> bool:
        """Whether some version of the module can run."""
        return self.spec is not None


@dataclass
class Changes:
    """What a refresh found."""

    added: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.reloaded or self.broken or self.removed)


class ModuleRegistry:
    """The modules of one folder, re-read when a file's modification time or size changes."""

    def __init__(self, folder: Path | None, zone: tzinfo = timezone.utc) -> None:
        self.folder = folder
        self.zone = zone
        self._entries: dict[str, ModuleEntry] = {}
        self._specs: list[ModuleSpec] | None = None
        self.version = 0  # changes whenever a module file is loaded, reloaded or removed
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
            return [self._entries[name] for name in sorted(self._entries)]

    def get(self, name: str) -> ModuleEntry | None:
        """One module by name."""
        return self._entries.get(name)

    def specs(self) -> list[ModuleSpec]:
        """The modules that can run (the last good version where an edit broke one)."""
        with self._lock:
            if self._specs is None:  # rebuilt only after a change: a tick asks every time
                self._specs = [entry.spec for entry in self.entries() if entry.spec is not None]
            return self._specs

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
            self._specs = None
            self.version += 1
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
    registry.refresh()
    entries = registry.entries()
    loaded = sum(entry.is_runnable for entry in entries)
    log.info("loaded %d module(s) from %s, %d broken", loaded, folder, len(entries) - loaded)
    return registry
