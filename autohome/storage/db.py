"""The state database: one SQLite file, WAL mode, versioned schema, one connection behind one lock.

Everything AutoHome must remember across restarts lives here: each module's schedule
position and pause, its run history, and the key-value store modules can ask for.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from autohome.errors import AutoHomeError
from autohome.logs.tree import get_logger
from autohome.storage.held import HeldWrites, Writer
from autohome.storage.repair import TABLES, is_damage, replace_damaged
from autohome.storage.schema import MIGRATIONS, migrate  # noqa: F401 - MIGRATIONS: tests read it here

log = get_logger("autohome.state")

DB_FILE = "autohome.db"
TEST_DB_FILE = "autohome-test.db"  # test mode's virtual time never touches the real schedule

# What a read or write raises when the database or its disk fails, and the connection a
# writer is handed: the names the rest of AutoHome uses, so that only storage/ imports sqlite3.
StorageFailure = sqlite3.Error
Connection = sqlite3.Connection


class DatabaseError(AutoHomeError):
    """The state database cannot be opened, read or written; the message names the file."""


class RunRow(NamedTuple):
    """One run as stored."""

    id: int
    module: str
    started: datetime
    finished: datetime | None
    duration_s: float | None
    error: str | None
    outcome: str | None = None


class ModuleRow(NamedTuple):
    """A module's stored schedule position and pause."""

    name: str
    paused: bool
    first_seen: datetime | None
    last_due_at: datetime | None


def as_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def as_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class Database:
    """AutoHome's SQLite file; every read and write goes through this one object.

    It never stops AutoHome: a write the disk refuses (full, failing) is kept in memory and
    tried again (held.py), with `failing` saying why meanwhile; a file found damaged
    under it is moved aside and a fresh one started, with what can be read of the old one
    (storage/repair.py), and `replaced` saying so."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only  # only looked at (autohome check): never migrated nor written
        self._lock = threading.Lock()
        self.failing: str | None = None  # why the last write failed, until writes work again
        self.replaced: list[str] = []  # what happened each time a damaged file was replaced
        self._on_replaced: list[Callable[[], None]] = []
        self._memory_due = False  # a damaged file was replaced: write_memory() has work
        self.held = HeldWrites(self._write_held, on_empty=self._written_again)
        try:
            self._conn = self._connect()
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"state database {path} cannot be used: {exc}. Check that the file is a "
                f"SQLite database and writable, or move it aside to start afresh "
                f"(AUTOHOME_DATA_DIR or --data chooses its folder)"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = sqlite3.connect(f"{Path(self.path).as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                   isolation_level=None, timeout=5)
            if conn.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                conn.close()
                raise sqlite3.DatabaseError("written by another version of AutoHome")
            self._conn = conn
            return conn
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; a power cut may lose the last
        # transactions but never leaves the file unreadable.
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn)
        self._conn = conn
        return conn

    def on_replaced(self, write_memory: Callable[[], None]) -> None:
        """Have `write_memory` called after a damaged file was replaced, at the next
        `write_memory()` (the next tick: not inside the write that found the damage, whose
        caller may hold its own lock): what its owner holds in memory goes into the fresh file."""
        self._on_replaced.append(write_memory)

    def write_memory(self) -> None:
        """If a damaged file was replaced since the last call: have what is held in memory
        written into the fresh one (see on_replaced)."""
        if not self._memory_due:
            return
        self._memory_due = False
        for write_memory in self._on_replaced:
            try:
                write_memory()
            except Exception:  # noqa: BLE001 - the next write of it tries again
                log.exception("could not write what AutoHome holds in memory into the fresh database")

    @classmethod
    def in_memory(cls) -> Database:
        """A private database that disappears with the object (tests, benchmarks)."""
        return cls(":memory:")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE) under the connection's lock. A failure is
        raised as it is; one that says the file is damaged replaces the file first."""
        replaced = False
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    # Also when COMMIT itself failed (a full disk): a transaction left open would
                    # make every later BEGIN fail until restart.
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self.failing = str(exc) or type(exc).__name__
                replaced = is_damage(exc) and self._replace_damaged(exc)
                if not replaced:
                    raise
            else:
                if self.failing is not None and not self.held:
                    self.failing = None
        if replaced:  # (a write that cannot be made now: its caller holds it, as on a full disk)
            raise sqlite3.DatabaseError(f"state database {self.path} was damaged and is replaced; the "
                                        "write is tried again in the fresh one")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one read (a damaged file is replaced first, and the read made again)."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if not (is_damage(exc) and self._replace_damaged(exc)):
                    raise
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _replace_damaged(self, exc: BaseException) -> bool:
        # Called with the lock held (storage/repair.py). False for a database with no file.
        if str(self.path) == ":memory:":
            return False
        notice, replaced = replace_damaged(Path(self.path), exc, self._conn, self._connect)
        self.replaced.append(notice)
        self._memory_due = replaced
        return replaced

    def _written_again(self) -> None:
        """Everything held is written: writes work again."""
        self.failing = None

    def _write_held(self, modules: dict[str, Any], store: dict[tuple[str, str], str | None],
                    writers: list[Writer]) -> list[Callable[[], None]]:
        """On the retry thread: everything held, in one transaction; returns what the writers
        want called once it is committed."""
        with self.transaction() as conn:
            self._save_module_rows(conn, list(modules.values()))
            for (module, key), encoded in store.items():
                write_store(conn, module, key, encoded)
            return [writer(conn) for writer in writers]

    def close(self, timeout_s: float = -1) -> None:
        """Close the connection (the WAL is checkpointed), waiting at most `timeout_s` (-1: as
        long as it takes) for a write under way; one that outlasts it is left to the process's end."""
        self.held.close()
        if not self._lock.acquire(timeout=timeout_s):
            return
        try:
            self._conn.close()
        finally:
            self._lock.release()

    # --- small values: the last known quota, the crash streak --------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored value, or None."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Store a value (None: forget it)."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # --- modules -------------------------------------------------------------------

    def modules(self) -> list[ModuleRow]:
        """Every module the database knows."""
        rows = self.query("SELECT name, paused, first_seen, last_due_at FROM modules")
        return [ModuleRow(n, bool(p), as_time(f), as_time(d)) for n, p, f, d in rows]

    def save_module(self, row: ModuleRow) -> None:
        """Insert or replace a module's schedule position and pause."""
        self.save_modules([row])

    def save_modules(self, rows: list[ModuleRow]) -> None:
        """Insert or replace several modules in one transaction (a tick's worth); if the disk
        refuses, they are held and written later (never raises for that)."""
        if not rows:
            return
        if self.held:  # a newer write waits behind the held ones
            self.held.hold_modules(rows)
            return
        try:
            with self.transaction() as conn:
                self._save_module_rows(conn, rows)
        except (sqlite3.Error, OSError):
            self.held.hold_modules(rows)

    @staticmethod
    def _save_module_rows(conn: sqlite3.Connection, rows: list[ModuleRow]) -> None:
        text = functools.lru_cache(maxsize=16)(as_text)  # a tick's rows share one or two times
        params = [(r.name, int(r.paused), text(r.first_seen), text(r.last_due_at)) for r in rows]
        conn.executemany(
            "INSERT INTO modules (name, paused, first_seen, last_due_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
            "first_seen = excluded.first_seen, last_due_at = excluded.last_due_at",
            params,
        )



def write_store(conn: sqlite3.Connection, module: str, key: str, encoded: str | None) -> None:
    """One store write inside a transaction (None: a delete)."""
    if encoded is None:
        conn.execute("DELETE FROM store WHERE module = ? AND key = ?", (module, key))
    else:
        conn.execute("INSERT INTO store (module, key, value) VALUES (?, ?, ?) "
                     "ON CONFLICT (module, key) DO UPDATE SET value = excluded.value", (module, key, encoded))


def open_database(data_dir: Path, file_name: str = DB_FILE) -> Database:
    """Open (creating if needed) `<data_dir>/autohome.db`; raise DatabaseError naming the file."""
    path = data_dir / file_name
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"state folder {data_dir} cannot be created: {exc.strerror}; "
            "set AUTOHOME_DATA_DIR (or --data) to a writable folder"
        ) from exc
    database = Database(path)
    try:
        # Each table's root read, and one write: a file that cannot be used says so now. (A
        # full check would read the whole file, a week of history; damage found later is
        # handled where it is found: storage/repair.py.)
        with database.transaction() as conn:
            for table in TABLES:
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()  # noqa: S608 - names from TABLES
            conn.execute("INSERT INTO meta (key, value) VALUES ('write check', '') "
                         "ON CONFLICT (key) DO NOTHING")
            conn.execute("DELETE FROM meta WHERE key = 'write check'")
    except (sqlite3.Error, DatabaseError) as exc:
        database.close()
        raise DatabaseError(
            f"state database {path} cannot be used: {exc}. Move it aside (rename it) to start "
            "afresh: schedules, pauses, history and the modules' stores start empty "
            "(AUTOHOME_DATA_DIR or --data chooses its folder)") from exc
    return database
