"""The state database: schema versions, bounded history, interrupted runs."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T0

from autohome.db import HISTORY_PER_MODULE, MIGRATIONS, Database, DatabaseError, open_database
from autohome.state import ModuleStates, RunRecord


def test_a_new_database_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data")
    assert db.schema_version == len(MIGRATIONS)
    db.close()
    with sqlite3.connect(tmp_path / "data" / "autohome.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_database_from_a_newer_autohome_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "autohome.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DatabaseError, match="newer than this AutoHome understands"):
        Database(path)


def test_history_keeps_the_newest_runs_per_module() -> None:
    states = ModuleStates(Database.in_memory())
    for number in range(HISTORY_PER_MODULE + 20):
        started = T0 + timedelta(minutes=number)
        states.record_start("busy", started)
        states.record_finish("busy", RunRecord(started, 0.1, None if number % 2 else "bad"), started)
    states.record_start("quiet", T0)
    states.record_finish("quiet", RunRecord(T0, 0.1), T0)
    history = states.history("busy", 1000)
    assert len(history) == HISTORY_PER_MODULE
    assert history[0].started == T0 + timedelta(minutes=HISTORY_PER_MODULE + 19)
    assert len(states.history("quiet", 1000)) == 1


def test_state_survives_reopening_and_only_runs_in_flight_are_lost(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    states = ModuleStates(db)
    states.set_paused("a", True)
    states.mark_due("a", T0)
    states.record_start("b", T0)
    states.record_finish("b", RunRecord(T0, 0.5, "ValueError: x"), T0)
    states.record_start("b", T0 + timedelta(hours=1))  # the process dies during this run
    db.close()

    reopened = ModuleStates(open_database(tmp_path))
    assert reopened.get("a").paused and reopened.get("a").last_due_at == T0
    assert reopened.get("b").last_run == RunRecord(T0, 0.5, "ValueError: x")
    assert reopened.get("b").running_since is None


def test_a_failed_commit_leaves_the_database_usable(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    db._conn.execute("PRAGMA foreign_keys = ON")  # has effect only outside a transaction
    with db._transaction() as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (parent INTEGER REFERENCES parent "
                     "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), db._transaction() as conn:
        conn.execute("INSERT INTO child VALUES (42)")  # only COMMIT notices the missing parent
    states = ModuleStates(db)
    states.set_paused("after", True)  # a later write still works
    assert ModuleStates(db).get("after").paused
