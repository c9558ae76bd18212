"""The state database: one SQLite file, WAL mode, versioned schema, one connection behind one lock.

Everything AutoHome must remember across restarts lives here: each module's schedule
position and pause, its run history, and the key-value store modules can ask for.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from autohome.errors import AutoHomeError
from autohome.schema import MIGRATIONS

DB_FILE = "autohome.db"
TEST_DB_FILE = "autohome-test.db"  # test mode's virtual time never touches the real schedule
HISTORY_PER_MODULE = 100  # kept whatever their age
KEEP_RUNS = timedelta(days=7)  # and every run this young (the status page's week)
MAX_RUNS_PER_MODULE = 25_000  # but never more: a week of 30 s runs is 20,160
ROWS_PER_INSERT = 150  # 750 parameters: under the 999 that older SQLite builds allow

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
    """AutoHome's SQLite file; every read and write goes through this one object."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=5
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; a power cut may lose the
            # last transactions but never leaves the file unreadable.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"state database {path} cannot be used: {exc}. Check that the file is a "
                f"SQLite database and writable, or move it aside to start afresh "
                f"(AUTOHOME_DATA_DIR or --data chooses its folder)"
            ) from exc

    @classmethod
    def in_memory(cls) -> Database:
        """A private database that disappears with the object (tests, benchmarks)."""
        return cls(":memory:")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE) under the connection's lock."""
        with self._lock:
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

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every row of one read."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        """The schema version stored in the file (PRAGMA user_version)."""
        return int(self.query("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this AutoHome understands "
                    f"({len(MIGRATIONS)}); upgrade AutoHome"
                )
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def close(self, timeout_s: float = -1) -> None:
        """Close the connection (the WAL is checkpointed), waiting at most `timeout_s` (-1: as
        long as it takes) for a write under way; one that outlasts it is left to the process's end."""
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
        """Insert or replace several modules in one transaction (a tick's worth)."""
        if not rows:
            return
        text = functools.lru_cache(maxsize=16)(as_text)  # a tick's rows share one or two times
        params = [(r.name, int(r.paused), text(r.first_seen), text(r.last_due_at)) for r in rows]
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO modules (name, paused, first_seen, last_due_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, "
                "first_seen = excluded.first_seen, last_due_at = excluded.last_due_at",
                params,
            )

    # --- runs ----------------------------------------------------------------------

    def add_runs(self, runs: list[RunRow], trim: set[str]) -> None:
        """Record finished runs in one transaction, and drop the runs of the modules in `trim`
        that are older than KEEP_RUNS (from the newest run given) beyond their newest
        HISTORY_PER_MODULE, and any beyond MAX_RUNS_PER_MODULE."""
        # Many rows per INSERT: each statement step lets go of the GIL and takes it back,
        # which in a burst of runs means waiting for it once per step.
        params = [(r.module, as_text(r.started), as_text(r.finished), r.duration_s, r.error, r.outcome)
                  for r in runs]
        with self.transaction() as conn:
            for first in range(0, len(params), ROWS_PER_INSERT):
                chunk = params[first:first + ROWS_PER_INSERT]
                conn.execute(
                    "INSERT INTO runs (module, started, finished, duration_s, error, outcome) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    [value for row in chunk for value in row],
                )
            cutoff = as_text(max(r.started for r in runs) - KEEP_RUNS) if runs else None
            for module in trim:
                conn.execute(
                    "DELETE FROM runs WHERE module = ? AND started < ? AND id <= (SELECT id FROM runs "
                    "WHERE module = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (module, cutoff, module, HISTORY_PER_MODULE),
                )
                conn.execute(
                    "DELETE FROM runs WHERE module = ? AND id <= (SELECT id FROM runs WHERE module = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (module, module, MAX_RUNS_PER_MODULE),
                )

    def history(self, module: str, limit: int = HISTORY_PER_MODULE) -> list[RunRow]:
        """The module's runs, newest first."""
        return self._runs("WHERE module = ? ORDER BY id DESC LIMIT ?",
                          (module, min(limit, HISTORY_PER_MODULE)))

    def runs_since(self, since: datetime, after_id: int = 0) -> list[RunRow]:
        """Every module's runs that started at or after `since` (and were stored after the run
        `after_id`), oldest first."""
        return self._runs("WHERE started >= ? AND id > ? ORDER BY started", (as_text(since), after_id))

    def latest_runs(self) -> dict[str, RunRow]:
        """Each module's newest stored run."""
        rows = self._runs("WHERE id IN (SELECT MAX(id) FROM runs GROUP BY module)")
        return {row.module: row for row in rows}

    def _runs(self, where: str, params: tuple[Any, ...] = ()) -> list[RunRow]:
        # `where` is one of the clauses above, never text from outside.
        columns = "id, module, started, finished, duration_s, error, outcome"
        rows = self.query(f"SELECT {columns} FROM runs {where}", params)
        return [RunRow(i, m, as_time(s), as_time(f), d, e, o) for i, m, s, f, d, e, o in rows]  # type: ignore[arg-type]

    # --- the modules' key-value store ------------------------------------------------

    def store_get(self, module: str, key: str) -> tuple[bool, Any]:
        """(found, value) for one key of a module's store."""
        rows = self.query("SELECT value FROM store WHERE module = ? AND key = ?", (module, key))
        return (True, json.loads(rows[0][0])) if rows else (False, None)

    def store_set(self, module: str, key: str, encoded: str) -> None:
        """Save one JSON-encoded value."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO store (module, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (module, key) DO UPDATE SET value = excluded.value",
                (module, key, encoded),
            )

    def store_keys(self, module: str) -> list[str]:
        """The keys a module has stored, sorted."""
        rows = self.query("SELECT key FROM store WHERE module = ? ORDER BY key", (module,))
        return [row[0] for row in rows]

    def store_delete(self, module: str, key: str) -> None:
        """Forget one key."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM store WHERE module = ? AND key = ?", (module, key))


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
        # A file whose header is intact but whose pages are not would fail later, mid-run.
        problems = [row[0] for row in database.query("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(str(problem) for problem in problems[:3]))
        database.save_module(ModuleRow("__autohome_write_check__", False, None, None))
        with database.transaction() as conn:
            conn.execute("DELETE FROM modules WHERE name = '__autohome_write_check__'")
    except sqlite3.Error as exc:
        database.close()
        raise DatabaseError(
            f"state database {path} cannot be used: {exc}. Move it aside (rename it) to start "
            "afresh: schedules, pauses, history and the modules' stores start empty "
            "(AUTOHOME_DATA_DIR or --data chooses its folder)") from exc
    return database
