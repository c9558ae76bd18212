"""A state database damaged under a running AutoHome (pages overwritten, a disk that failed):
recognised by SQLite's own word, moved aside under a name of its own, and replaced by a fresh
one into which whatever can still be read of the old one is copied."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

# SQLite's result codes for a file that is damaged or is not a database at all.
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
TABLES = ("modules", "runs", "store", "outbox", "meta", "sleeps")


def is_damage(exc: BaseException) -> bool:
    """Whether SQLite's error says the file is damaged (not merely full or busy)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    return code in _DAMAGE_CODES or "malformed" in text or "not a database" in text


def replace_damaged(path: Path, exc: BaseException, conn: sqlite3.Connection,
                    connect: Callable[[], sqlite3.Connection]) -> tuple[str, bool]:
    """Close the damaged file's connection, move it aside, open a fresh one (`connect`) and
    copy into it what can still be read; return what happened, for the log, and whether the
    file was replaced."""
    try:
        conn.close()
        aside = move_aside(path)
        fresh = connect()
    except (OSError, sqlite3.Error) as failed:
        return (f"the state database {path} is damaged ({exc}) and could not be replaced ({failed}); "
                "move it aside by hand and restart AutoHome"), False
    copied, lost = salvage(fresh, aside)
    return (f"the state database {path} was damaged ({exc}): moved aside as {aside.name}, and a fresh one "
            f"started with what AutoHome held in memory (schedule positions, pauses, each module's last run)"
            f"{'; copied from the old file: ' + ', '.join(copied) if copied else ''}"
            f"{'; could not be read from it (lost): ' + ', '.join(lost) if lost else ''}"), True


def move_aside(path: Path) -> Path:
    """Rename the file (and its -wal and -shm) to `<name>.damaged`, `.damaged-1`, ...: never
    over an earlier one. Returns the new name of the file itself."""
    aside = path.with_name(f"{path.name}.damaged")
    number = 0
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{number}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return aside


def salvage(conn: sqlite3.Connection, aside: Path) -> tuple[list[str], list[str]]:
    """Copy each table's rows that can still be read from the damaged file into the fresh
    one, a table at a time; return the tables copied and those that could not be."""
    copied, lost = [], []
    try:
        conn.execute("ATTACH DATABASE ? AS damaged", (str(aside),))
    except sqlite3.Error:
        return [], list(TABLES)
    try:
        for table in TABLES:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM damaged.{table}")  # noqa: S608 - names from TABLES
                conn.execute("COMMIT")
                copied.append(table)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                lost.append(table)
    finally:
        try:
            conn.execute("DETACH DATABASE damaged")
        except sqlite3.Error:
            pass  # it goes with the connection
    return copied, lost
