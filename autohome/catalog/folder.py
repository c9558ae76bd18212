"""The modules folder as files: each `.py` file's modification time and size, the entries
that cannot be modules (a name that is not text, a link to nothing or to itself), and what
changed between two looks."""

from __future__ import annotations

import os
import re
from pathlib import Path

from autohome.text import printable_name

_NAME = re.compile(r"[\w-]+")  # what the console can name: letters, digits, _ and -


def scan_folder(folder: Path) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[Path, str]]]:
    """The folder's .py files: name -> (modification time, size), one directory read and one
    stat per file, since this runs at every tick; and the entries that cannot be modules,
    as shown name -> (path, why). Names starting with `_` are helpers."""
    stamps: dict[str, tuple[int, int]] = {}
    bad: dict[str, tuple[Path, str]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(".py") or name == "__init__.py":
                continue
            stem = name[:-3]
            if not stem.isidentifier():  # nearly never: the checks below cost more
                shown = printable_name(stem)
                if shown != stem:
                    bad[shown] = (Path(entry.path), "its file name is not plain text (bytes that are not "
                                  "UTF-8, or control characters): rename it to letters, digits, _ and -")
                    continue
                if not _NAME.fullmatch(stem):
                    bad[stem] = (Path(entry.path), "its file name has characters the console cannot name: "
                                 "rename it to letters, digits, _ and - only")
                    continue
            try:
                if not entry.is_file():
                    if entry.is_symlink():
                        bad[stem] = (Path(entry.path), "it is a link to a file that does not exist")
                    continue
                info = entry.stat()
            except FileNotFoundError:
                continue  # removed while listing: the next tick sees it
            except OSError as exc:  # a link to itself, a file that may not be read
                bad[stem] = (Path(entry.path), f"it cannot be read: {exc.strerror or exc}")
                continue
            stamps[entry.name] = (info.st_mtime_ns, info.st_size)
    return stamps, bad


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
