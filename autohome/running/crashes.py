"""A crash of the interpreter itself (a segfault in a C extension, a fatal error) leaves a trace
that survives it, and the next start explains it.

While AutoHome runs, Python's `faulthandler` is armed on `<database>.crash`: at a crash it
writes the fatal error and every thread's stack there. At the next start that file names
the time, the error and the module whose code the crashed thread ran (the newest frame
from a file in the modules folder); AutoHome logs it and notifies once. A module that takes
the process down twice in a row runs in a child process from then on (as with ISOLATE =
True) until its file changes. A clean stop removes the file and ends the streak.
"""

from __future__ import annotations

import faulthandler
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import IO, NamedTuple

from autohome.logs.tree import get_logger
from autohome.storage.db import Database
from autohome.text import cut

log = get_logger("autohome.main")

STREAK_KEY = "crash_streak"  # in the database's meta table: {"module": name, "count": n}
ISOLATED_KEY = "crash_isolated"  # {name: {"stamp": [mtime_ns, size], "reason": text}}
CRASHES_BEFORE_ISOLATION = 2
_FRAME = re.compile(r'^\s*File "(.+)", line \d+ in ')


class Crash(NamedTuple):
    """What a crash left: when, the fatal error, the module it ran, the dump itself."""

    at: datetime
    error: str
    module: str | None
    text: str


class CrashRecorder:
    """Arms faulthandler on a file while AutoHome runs, and reads what a crash left there."""

    def __init__(self, path: Path, modules_dir: Path) -> None:
        self.path = path
        self.modules_dir = modules_dir
        self._file: IO[str] | None = None
        self._was_enabled = False  # faulthandler was on before (an embedding test runner)

    def previous(self) -> Crash | None:
        """What the last crash left in the file, if the last run crashed."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
            at = datetime.fromtimestamp(self.path.stat().st_mtime, timezone.utc)
        except OSError:
            return None
        if not text.strip():
            return None  # armed, then stopped without a crash (kill -9, a power cut)
        error = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                      if line.startswith("Fatal Python error:")), "a fatal error")
        return Crash(at, error, self._module_in(text), cut(text, 20_000))

    def _module_in(self, text: str) -> str | None:
        """The module whose code the crashed thread ran: its newest frame in the folder."""
        lines = text.splitlines()
        start = next((number for number, line in enumerate(lines) if line.startswith("Current thread")), None)
        if start is None:
            return None
        folder = str(self.modules_dir.resolve())
        for line in lines[start + 1:]:
            found = _FRAME.match(line)
            if found is None:
                break
            if found.group(1).startswith(folder):
                return Path(found.group(1)).stem
        return None

    def arm(self) -> None:
        """From now on, a crash writes the fatal error and every thread's stack to the file."""
        self._was_enabled = faulthandler.is_enabled()
        self._file = self.path.open("w", encoding="utf-8")
        faulthandler.enable(self._file, all_threads=True)

    def disarm(self) -> None:
        """A clean stop: nothing to report at the next start."""
        if self._file is None:
            return
        faulthandler.disable()
        if self._was_enabled and sys.__stderr__ is not None:
            faulthandler.enable(sys.__stderr__)
        try:
            self._file.close()
        except OSError:
            pass  # its descriptor was closed under it (descriptors.py): nothing was written there
        self._file = None
        self.path.unlink(missing_ok=True)


def report_crash(crash: Crash, db: Database, isolation: CrashIsolation, alert: Callable[[str, str], None],
                 zone: tzinfo, modules_dir: Path) -> None:
    """Explain the last run's crash, once: in the log, with its dump, and in a notification
    (`alert`); a module that crashed AutoHome twice in a row runs in a child process from now on."""
    when = f"{crash.at.astimezone(zone):%Y-%m-%d %H:%M:%S}"
    running = f"while running module {crash.module}" if crash.module else "(no module's code was running)"
    log.error("AutoHome crashed at %s %s: %s. What Python left at the crash (the fatal error and every "
              "thread's stack):\n%s", when, running, crash.error, crash.text.rstrip())
    alert(f"AutoHome crashed at {when} {running}: {crash.error}", "AutoHome: crashed")
    in_a_row = count_crash(db, crash)
    if crash.module is None or in_a_row < CRASHES_BEFORE_ISOLATION:
        return
    isolation.isolate(crash.module, modules_dir / f"{crash.module}.py",
                      f"it crashed AutoHome {in_a_row} times in a row (the last at {when}: {crash.error}); "
                      "it runs as its file says again once the file changes")
    log.error("module %s crashed AutoHome %d times in a row: it runs in a child process from now on, where "
              "a crash ends only its run, until its file changes", crash.module, in_a_row)
    alert(f"{crash.module} crashed AutoHome {in_a_row} times in a row: it runs in a child process from now "
          "on, until its file changes", "AutoHome: module isolated")


def count_crash(db: Database, crash: Crash) -> int:
    """Add the crash to the streak of crashes in a row by the same module; return its length
    (0 when the crash named no module)."""
    streak = json.loads(db.get_meta(STREAK_KEY) or "{}")
    count = streak.get("count", 0) + 1 if crash.module and streak.get("module") == crash.module else 1
    db.set_meta(STREAK_KEY, json.dumps({"module": crash.module, "count": count}) if crash.module else None)
    return count if crash.module else 0


def end_streak(db: Database) -> None:
    """A clean stop ends any streak of crashes."""
    db.set_meta(STREAK_KEY, None)


class CrashIsolation:
    """The modules that run in a child process because they crashed AutoHome twice in a row,
    kept in the database until their file changes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._modules: dict[str, dict[str, object]] = dict(json.loads(db.get_meta(ISOLATED_KEY) or "{}"))
        self.names: frozenset[str] = frozenset(self._modules)  # read at every run: a plain set

    def reason(self, name: str) -> str | None:
        """Why the module runs in a child process, if it is one of them."""
        entry = self._modules.get(name)
        return None if entry is None else str(entry["reason"])

    def isolate(self, name: str, path: Path, reason: str) -> None:
        """From now on the module runs in a child process, until its file changes."""
        self._modules[name] = {"stamp": _file_stamp(path), "reason": reason}
        self._save()

    def forget_changed(self, paths: dict[str, Path]) -> list[str]:
        """Let the modules whose file changed run as they say again; return them."""
        changed = [name for name, entry in self._modules.items()
                   if name in paths and _file_stamp(paths[name]) != entry["stamp"]]
        for name in changed:
            del self._modules[name]
        if changed:
            self._save()
        return changed

    def _save(self) -> None:
        self.names = frozenset(self._modules)
        self.db.set_meta(ISOLATED_KEY, json.dumps(self._modules) if self._modules else None)


def _file_stamp(path: Path) -> list[int]:
    """The module file's modification time and size, to notice that it changed."""
    try:
        info = path.stat()
    except OSError:
        return [0, 0]
    return [info.st_mtime_ns, info.st_size]
