"""The modules of one folder: found, loaded, and re-loaded when a file changes.

The registry notices edited, added and removed files by their modification time and size
at each tick, and keeps the last good version of a module whose edit broke it.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Callable
from datetime import timedelta, timezone, tzinfo
from pathlib import Path

from autohome.catalog.folder import Changes, scan_folder
from autohome.catalog.importer import Importer, ImportJob
from autohome.catalog.loader import BrokenModule, ModuleLoadError, ModuleSpec, load_module, use_helpers
from autohome.durations import format_duration
from autohome.logs.tree import get_logger
from autohome.revision import Revision

log = get_logger("autohome.loader")


IMPORT_TIMEOUT_S = 10.0
TICK_WAIT_S = 0.5  # a tick waits this long for the imports it started; slower ones join a later tick


class ModuleEntry:
    """One module file: what runs (the last good version), and what is wrong, if anything."""

    def __init__(self, name: str, path: Path, stamp: tuple[int, int] = (0, 0),
                 spec: ModuleSpec | None = None, problem: str = "") -> None:
        self.name = name
        self.path = path
        self.stamp = stamp
        self.spec = spec
        self.problem = problem


class ModuleRegistry:
    """The modules of one folder, re-read when a file's modification time or size changes.
    Files are imported off the tick (importer.py): a refresh waits a moment for the imports
    it started, and what takes longer is picked up by a later one when it is ready."""

    def __init__(self, folder: Path | None, zone: tzinfo = timezone.utc,
                 revision: Revision | None = None, import_timeout_s: float = IMPORT_TIMEOUT_S,
                 after_import: Callable[[str], None] | None = None,
                 on_change: Callable[[list[ModuleSpec]], None] | None = None,
                 alert: Callable[[str, str], None] | None = None) -> None:
        self.folder = folder
        self.zone = zone
        self.import_timeout_s = import_timeout_s
        self._after_import = after_import or (lambda name: None)  # logs.LoggingGuard.check
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
        self._importer = Importer(self._import, self._imported)
        self._seen: dict[str, tuple[int, int]] = {}  # each module file as the last refresh saw it
        self._submitted: dict[str, tuple[int, int]] = {}  # ... and as it was last handed to the importer
        self._overdue: set[ImportJob] = set()  # imports already reported as running too long
        self._changes = Changes()  # what imports changed since the last refresh returned
        self._to_tell = False  # on_change has not heard of the latest change
        # Told the runnable modules whenever they change (RunExecutor.prepare).
        self.on_change = on_change
        # Told of each file that an edit broke, after the first load (notifier.Notifier.alert).
        self._alert = alert or (lambda message, title: None)

    @classmethod
    def of(cls, items: list[ModuleSpec | BrokenModule], revision: Revision | None = None,
           on_change: Callable[[list[ModuleSpec]], None] | None = None) -> ModuleRegistry:
        """A fixed registry with no folder behind it (tests, benchmarks)."""
        registry = cls(None, revision=revision, on_change=on_change)
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
        """The first refresh: load every file, waiting for the imports up to the import timeout
        (the console answers meanwhile), and log how many loaded and how many are broken."""
        changes = self._refresh(self.import_timeout_s)
        self.is_loaded = True
        runnable, broken = self.counts()
        log.info("loaded %d module(s) from %s, %d broken", runnable, self.folder, broken)
        return changes

    def refresh(self, wait_s: float = TICK_WAIT_S) -> Changes:
        """Start importing new and changed files, forget removed ones, and wait up to `wait_s`
        for the imports; return what changed since the last refresh (imports that finished
        in between included). After the first load, a file that broke is alerted about."""
        changes = self._refresh(wait_s)
        if self.is_loaded:
            for name in changes.broken:
                entry = self.get(name)
                self._alert(f"{name}.py is broken: {entry.problem if entry else ''}",
                            "AutoHome: module broken")
        return changes

    def _refresh(self, wait_s: float) -> Changes:
        if self.folder is None:
            return Changes()
        with self._refreshing:
            try:
                stamps, bad = scan_folder(self.folder)
            except OSError as exc:
                log.error("cannot read the modules folder %s: %s", self.folder, exc)
                return self._take_changes()
            modules = {n[:-3]: stamp for n, stamp in stamps.items() if not n.startswith("_")}
            helpers = {n[:-3]: stamp for n, stamp in stamps.items() if n.startswith("_")}
            helpers_changed = helpers != self._helpers
            if helpers_changed:
                self._use_helpers(helpers)
                self._helpers = helpers
            with self._lock:
                self._forget(modules, bad)
                self._mark_bad(bad)
                self._seen = modules
                changed = sorted(name for name, stamp in modules.items()
                                 if helpers_changed or self._submitted.get(name) != stamp)
                self._submitted.update((name, modules[name]) for name in changed)
            for name in changed:
                self._importer.submit(ImportJob(name, self.folder / f"{name}.py", modules[name]))
            if changed or wait_s >= self.import_timeout_s:
                self._importer.wait(wait_s)
            self._report_overdue()
            return self._take_changes()

    def _take_changes(self) -> Changes:
        self._tell()
        with self._lock:
            changes, self._changes = self._changes, Changes()
            return changes

    def _forget(self, modules: dict[str, tuple[int, int]], bad: dict[str, tuple[Path, str]]) -> None:
        # Called with the lock held: entries whose file is gone.
        gone = [name for name in self._entries if name not in modules and name not in bad]
        for name in gone:
            del self._entries[name]
            self._submitted.pop(name, None)
            self._changes.removed.append(name)
            log.info("module %s removed (its file is gone)", name)
        if gone:
            self._changed()

    def _mark_bad(self, bad: dict[str, tuple[Path, str]]) -> None:
        # Called with the lock held: entries that cannot be modules (their name, a link).
        marked = False
        for name, (path, why) in bad.items():
            entry = self._entries.get(name)
            if name.startswith("_") or (entry is not None and entry.spec is None and entry.problem == why):
                continue
            self._entries[name] = ModuleEntry(name, path, problem=why)
            self._submitted.pop(name, None)
            self._changes.broken.append(name)
            log.error("module %s is broken and will not run: %s (%s)", name, why, path)
            marked = True
        if marked:
            self._changed()

    def _import(self, job: ImportJob) -> ModuleSpec | ModuleLoadError:
        """On an import thread: import one file and check it; a bug in the check is that
        module's problem only."""
        try:
            return load_module(job.path, self.zone)
        except ModuleLoadError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bug in the check itself: that module only
            log.exception("checking %s failed", job.path)
            return ModuleLoadError(f"could not be checked: {type(exc).__name__}: {exc}")
        finally:
            self._after_import(job.name)

    def _imported(self, job: ImportJob, result: object) -> None:
        """On an import thread: apply the result, unless the file changed or went meanwhile."""
        assert isinstance(result, ModuleSpec | ModuleLoadError)
        with self._lock:
            if self._seen.get(job.name) != job.stamp:
                return
            self._apply(job.name, job.stamp, result, self._changes)
            self._changed()

    def _report_overdue(self) -> None:
        late = ModuleLoadError(f"import still running after "
                               f"{format_duration(timedelta(seconds=self.import_timeout_s))}: a loop "
                               "or a long wait at the top level of the file? Move it into run()")
        for job in self._importer.running_longer_than(self.import_timeout_s):
            if job in self._overdue:
                continue
            self._overdue.add(job)
            self._imported(job, late)

    def _changed(self) -> None:
        # Called with the lock held, after a change of any entry. Who is told of the runnable
        # modules (RunExecutor.prepare) hears at the end of the refresh, once, not at each file.
        self._specs = self._sorted = None
        self.revision.bump()
        self._to_tell = True

    def _tell(self) -> None:
        with self._lock:
            if self._to_tell and self.on_change is not None:
                self._to_tell = False
                self.on_change(self.specs())

    def _use_helpers(self, helpers: dict[str, tuple[int, int]]) -> None:
        """`import _helpers` in a module finds the folder's helpers, as they are now (called
        before self._helpers takes the new stamps). The folder is never put on sys.path: a
        module file named like one of Python's own (`inspect.py`) hides nothing."""
        assert self.folder is not None
        use_helpers(self.folder)
        for name in set(helpers) | set(self._helpers):
            sys.modules.pop(name, None)  # imported afresh by the modules reloaded below
        for name in sorted(set(helpers) - set(self._helpers)):
            if name in sys.stdlib_module_names or importlib.machinery.PathFinder.find_spec(name):
                log.error("helper %s.py is hidden by Python's own module (or an installed one) of the "
                          "same name, so `import %s` finds that one: rename the file", name, name)
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
        elif self.is_loaded:
            log.info("module %s added from %s", name, entry.path)

    def mark_broken(self, name: str, problem: str) -> None:
        """Take a module out of the running (its next run cannot be computed, say) until its
        file changes."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.spec is None:
                return
            entry.spec, entry.problem = None, problem
            self._changed()
        self._tell()
        log.error("module %s is broken and will not run: %s (fix %s)", name, problem, entry.path)
