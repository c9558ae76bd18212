"""Log files at rest: archiving current.log under its first timestamp, pruning archives, reading a tail."""

from __future__ import annotations

import re
from pathlib import Path

CURRENT_LOG = "current.log"
TEST_LOG = "test.log"  # test mode's: virtual-time lines never mix into current.log
# Patterns are compiled on first use (re caches them): most start-ups never need them.
_TIMESTAMP = rb"(\d{4})-(\d{2})-(\d{2})[ T_](\d{2})[:-](\d{2})[:-](\d{2})"


def tail_lines(path: Path, count: int, block_bytes: int = 65536) -> list[str]:
    """The last `count` lines of a file, reading backwards from its end only as far as needed."""
    with path.open("rb") as stream:
        stream.seek(0, 2)
        position = stream.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(block_bytes, position)
            position -= step
            stream.seek(position)
            data = stream.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []


_ENTRY_START = rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # a log line; a traceback's lines are not


def tail_entries(path: Path, count: int, most_lines: int = 20_000) -> list[str]:
    """The lines of the last `count` log entries: an entry is a line that starts with its
    time, with the lines that follow it (a traceback), so one entry is never cut in two."""
    lines = tail_lines(path, most_lines)
    starts = [i for i, line in enumerate(lines) if re.match(_ENTRY_START, line.encode())]
    if not count or not starts:
        return []
    return lines[starts[-count] if len(starts) >= count else starts[0]:]


def first_timestamp(path: Path) -> str | None:
    """The first `YYYY-MM-DD HH:MM:SS` in the file, as `YYYY-MM-DD_HH-MM-SS`, or None."""
    with path.open("rb") as stream:
        for line in stream:
            found = re.search(_TIMESTAMP, line)
            if found:
                y, mo, d, h, mi, s = (part.decode() for part in found.groups())
                return f"{y}-{mo}-{d}_{h}-{mi}-{s}"
    return None


def _prefix(name: str) -> str:
    """What archives of this log start with: none for current.log, `test-` for test.log."""
    return "" if name == CURRENT_LOG else name.removesuffix(".log") + "-"


def archive_current_log(log_dir: Path, name: str = CURRENT_LOG) -> Path | None:
    """Rename `current.log` (or test mode's `test.log`, as `test-<time>.log`) after its first
    timestamp (or a unique id); never overwrite.

    Returns the archive's path, or None when there was no such log to archive.
    """
    current = log_dir / name
    if not current.is_file():
        return None
    import uuid

    stem = _prefix(name) + (first_timestamp(current) or f"archive-{uuid.uuid4().hex[:12]}")
    target = log_dir / f"{stem}.log"
    suffix = 0
    while target.exists():
        suffix += 1
        target = log_dir / f"{stem}-{suffix}.log"
    current.rename(target)
    return target


_ARCHIVE_NAME = r"^(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?|archive-[0-9a-f]+(-\d+)?)\.log$"


def archives(log_dir: Path, name: str = CURRENT_LOG) -> list[Path]:
    """The archives of one log (current.log's, or test.log's) in the folder, oldest first."""
    prefix = _prefix(name)
    found = [path for path in log_dir.iterdir()
             if path.name.startswith(prefix) and re.match(_ARCHIVE_NAME, path.name[len(prefix):])]
    return sorted(found, key=lambda path: (path.stat().st_mtime_ns, path.name))


def prune_archives(log_dir: Path, keep: int, name: str = CURRENT_LOG) -> list[Path]:
    """Delete all but the newest `keep` archives of the log; return what was deleted."""
    old = archives(log_dir, name)[:-keep] if keep > 0 else archives(log_dir, name)
    for path in old:
        path.unlink(missing_ok=True)
    return old


