"""The state database and its writer: schema versions, bounded history, runs in flight, failed writes."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S

from autohome.logs.tree import get_logger
from autohome.storage import runwriter
from autohome.storage.db import MIGRATIONS, Database, DatabaseError, open_database
from autohome.storage.runs import HISTORY_PER_MODULE, ROWS_PER_INSERT, latest_runs, runs_since
from autohome.storage.state import ModuleStates, Outcome, RunRecord


def test_a_new_database_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    open_database(tmp_path / "data").close()
    with sqlite3.connect(tmp_path / "data" / "autohome.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_database_from_a_newer_autohome_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "autohome.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DatabaseError, match="newer than this AutoHome understands"):
        Database(path)


def test_runs_are_kept_for_a_week_and_at_least_the_newest_hundred() -> None:
    states = ModuleStates(Database.in_memory())
    # 120 old runs, a day apart, then 150 within three hours: every young one stays, however
    # many; old ones stay only among the newest 100.
    old = [T0 - timedelta(days=200 - number) for number in range(120)]
    young = [T0 + timedelta(minutes=number) for number in range(150)]
    moments = old + young
    for number, started in enumerate(moments):
        states.record_finish("busy", RunRecord(started, 0.1, None if number % 2 else "bad"), started)
    states.record_finish("quiet", RunRecord(T0, 0.1), T0)
    states.flush()
    kept = [row.started for row in runs_since(states.db, T0 - timedelta(days=1000)) if row.module == "busy"]
    assert kept == young
    assert len(states.history("quiet", 1000)) == 1
    assert [row.module for row in runs_since(states.db, T0 + timedelta(minutes=149))] == ["busy"]
    # With only old runs, the newest 100 stay.
    states = ModuleStates(Database.in_memory())
    for started in old:
        states.record_finish("old", RunRecord(started, 0.1), started)
    states.flush()
    assert len(runs_since(states.db, old[0])) == HISTORY_PER_MODULE


def test_state_and_finished_runs_survive_reopening(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    states = ModuleStates(db)
    states.set_paused("a", True)
    states.mark_due("a", T0)
    states.record_finish("b", RunRecord(T0, 0.5, "ValueError: x"), T0)
    assert states.flush()
    db.close()

    reopened = ModuleStates(open_database(tmp_path))
    assert reopened.get("a").paused and reopened.get("a").last_due_at == T0
    assert reopened.get("b").last_run == RunRecord(T0, 0.5, "ValueError: x")


def test_a_failed_commit_leaves_the_database_usable(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    db.query("PRAGMA foreign_keys = ON")  # has effect only outside a transaction
    with db.transaction() as conn:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (parent INTEGER REFERENCES parent "
                     "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), db.transaction() as conn:
        conn.execute("INSERT INTO child VALUES (42)")  # only COMMIT notices the missing parent
    states = ModuleStates(db)
    states.set_paused("after", True)  # a later write still works
    assert ModuleStates(db).get("after").paused


class _Seen(logging.Handler):
    """Sets an event when a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@contextmanager
def _watching(*texts: str) -> Iterator[list[_Seen]]:
    """Handlers on autohome.state that each set an event when their text is logged."""
    seen = [_Seen(text) for text in texts]
    for handler in seen:
        get_logger("autohome.state").addHandler(handler)
    try:
        yield seen
    finally:
        for handler in seen:
            get_logger("autohome.state").removeHandler(handler)


def _disk_full(db: Database) -> None:
    """Make every insert of a run fail, as on a full disk."""
    with db.transaction() as conn:
        conn.execute("CREATE TRIGGER full BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'disk full'); END")


def test_runs_that_cannot_be_stored_are_kept_and_stored_once_writing_works(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    _disk_full(db)
    with _watching("could not store 1 finished run(s)") as (failed,):
        announced = threading.Event()
        states = ModuleStates(db, retry_s=0.05, announce=lambda record: announced.set())
        line = logging.LogRecord("autohome.main", logging.INFO, "", 0, "module a finished", (), None)
        states.record_finish("a", RunRecord(T0, 0.5), T0, line)
        assert failed.event.wait(WAIT_S), "the failed write was not logged"
        assert not states.flush(timeout_s=0)
        # The "finished" line does not wait for a disk that may not come back.
        assert states.flush_lines(timeout_s=WAIT_S) and announced.is_set()
        with db.transaction() as conn:
            conn.execute("DROP TRIGGER full")
        assert states.flush(timeout_s=WAIT_S)
        assert [run.started for run in states.history("a", 10)] == [T0]


def test_closing_stores_every_finished_run_even_in_a_burst(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    states = ModuleStates(db)
    count = ROWS_PER_INSERT * 2 + 7  # several INSERT statements in one batch
    # One tick starts them all: a burst, so the writer gathers runs before it writes.
    states.start_tick(T0, [], [f"m{number}" for number in range(count)])
    for number in range(count):
        name = f"m{number}"
        states.record_finish(name, RunRecord(T0, 0.1, None if number % 3 else f"error {number}"), T0)
    states.close()
    db.close()
    latest = latest_runs(open_database(tmp_path))
    assert len(latest) == count
    assert latest["m300"].error == "error 300" and latest["m301"].error is None


def test_a_flush_does_not_wait_for_a_burst_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # While a tick's runs keep ending, the writer gathers them so that it does not compete
    # with them; someone waiting for the runs (`modules read`, a test) is served at once.
    monkeypatch.setattr(runwriter, "GROUP_WAIT_S", 3600.0)  # gathering alone would take an hour
    announced: list[object] = []
    states = ModuleStates(open_database(tmp_path), announce=announced.append)
    states.start_tick(T0, [], ["a", "b", "c"])
    states.record_finish("a", RunRecord(T0, 0.1), T0, "module a finished")
    assert states.flush(timeout_s=WAIT_S)
    assert [run.started for run in states.history("a", 10)] == [T0] and announced == ["module a finished"]
    states.record_finish("b", RunRecord(T0, 0.1), T0, "module b finished")
    assert states.close(timeout_s=WAIT_S)  # closing does not wait for the gathering either
    assert announced == ["module a finished", "module b finished"]


def test_closing_while_writes_fail_says_what_is_lost_and_does_not_hang(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    _disk_full(db)
    watched = ("could not store 1 finished run(s)", "1 finished run(s) could not be stored")
    with _watching(*watched) as (failed, lost):
        states = ModuleStates(db, retry_s=3600)
        states.record_finish("a", RunRecord(T0, 0.5), T0)
        assert failed.event.wait(WAIT_S)
        assert states.close(timeout_s=WAIT_S)  # wakes the writer from its hour-long retry wait
        assert lost.event.is_set()


def test_trimming_a_module_s_old_runs_reaches_only_the_rows_it_deletes(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    plan = " ".join(str(row) for row in db.query(
        "EXPLAIN QUERY PLAN DELETE FROM runs INDEXED BY runs_by_module_started WHERE module = ? "
        "AND started < ? AND id <= (SELECT id FROM runs WHERE module = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        ("m", "2026", "m", 100)))
    assert "runs_by_module_started (module=? AND started<?)" in plan
    latest = " ".join(str(row) for row in db.query(
        "EXPLAIN QUERY PLAN SELECT MAX(id) FROM runs WHERE module = ?", ("m",)))
    assert "SCAN" not in latest  # a seek, whatever the history holds


def test_outcomes_are_stored_and_read_back_as_their_words(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    states = ModuleStates(db)
    for number, outcome in enumerate(Outcome):
        error = None if outcome is Outcome.OK else f"{outcome} error"
        states.record_finish(f"m{number}", RunRecord(T0, 0.1, error, outcome), T0 + timedelta(seconds=number))
    assert states.flush()
    db.close()
    stored = [row[0] for row in sqlite3.connect(tmp_path / "autohome.db").execute(
        "SELECT outcome FROM runs ORDER BY id")]
    assert stored == ["ok", "error", "timeout", "stopped", "overrun", "skipped"]
    reopened = ModuleStates(open_database(tmp_path))
    assert [reopened.get(f"m{n}").last_run.how for n in range(6)] == list(Outcome)  # type: ignore[union-attr]
    assert [f"{outcome}" for outcome in Outcome] == stored
