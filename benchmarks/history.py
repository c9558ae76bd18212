"""History: what storing a run, a tick and a start cost on a fresh state database and on one a
week old (20 modules every minute for 7 days: 201,600 runs), beside a bare SQLite insert.

The week-old figures should stay within 2x of the fresh ones: nothing AutoHome does per run,
per tick or per start may read history it does not need.

Run: python benchmarks/history.py
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from bench import T0, Daemon, percentile, report, temp_dir

from autohome.storage.db import ModuleRow, RunRow, open_database
from autohome.storage.runs import add_runs
from autohome.storage.runwriter import TRIM_EVERY
from autohome.storage.state import ModuleStates

MODULES = 20
WEEK_RUNS = MODULES * 7 * 24 * 60  # every minute for a week
STORED = 2_000  # runs stored one at a time, as the state writer does between bursts
TICKS = 300


def build(folder: Path, runs: int) -> Path:
    """A data folder whose database holds `runs` runs, spread over the week before T0."""
    data = folder / "data"
    db = open_database(data)
    names = [f"m{number:02d}" for number in range(MODULES)]
    db.save_modules([ModuleRow(name, False, T0 - timedelta(days=7), T0) for name in names])
    step = timedelta(days=7) / max(runs // MODULES, 1)
    batch = []
    for number in range(runs):
        moment = T0 - timedelta(days=7) + step * (number // MODULES)
        batch.append(RunRow(0, names[number % MODULES], moment, moment, 0.01, None, "ok"))
        if len(batch) == 5000:
            add_runs(db, batch, set())
            batch = []
    if batch:
        add_runs(db, batch, set())
    db.close()
    return data


def store_cost(data: Path) -> float:
    """Seconds per run stored one at a time, with the writer's trimming every TRIM_EVERY runs."""
    db = open_database(data)
    since_trim: dict[str, int] = {}
    began = time.perf_counter()
    for number in range(STORED):
        name = f"m{number % MODULES:02d}"
        moment = T0 + timedelta(minutes=number // MODULES)
        since_trim[name] = since_trim.get(name, 0) + 1
        trim = {name} if since_trim[name] % TRIM_EVERY == 0 else set()
        add_runs(db, [RunRow(0, name, moment, moment, 0.01, None, "ok")], trim)
    took = (time.perf_counter() - began) / STORED
    db.close()
    return took


def bare_insert_cost(folder: Path) -> float:
    """Seconds per row inserted one transaction at a time into a table like `runs`."""
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, module TEXT, started TEXT, finished TEXT, "
                 "duration_s REAL, error TEXT, outcome TEXT)")
    began = time.perf_counter()
    for number in range(STORED):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO runs (module, started, finished, duration_s, error, outcome) VALUES "
                     "(?, ?, ?, ?, ?, ?)", (f"m{number % MODULES:02d}", "t", "t", 0.01, None, "ok"))
        conn.execute("COMMIT")
    took = (time.perf_counter() - began) / STORED
    conn.close()
    return took


def tick_write_p99(data: Path) -> float:
    """The tick's write transaction (schedule positions of every module due), p99 seconds."""
    db = open_database(data)
    states = ModuleStates(db)
    names = [f"m{number:02d}" for number in range(MODULES)]
    times = []
    for number in range(TICKS):
        began = time.perf_counter()
        states.start_tick(T0 + timedelta(minutes=number + 1), [], names)
        times.append(time.perf_counter() - began)
    states.close()
    db.close()
    return percentile(times, 0.99)


def start_up(folder: Path) -> float:
    """Seconds from `python main.py` until its console listens, on this folder's database."""
    (folder / "modules").mkdir(exist_ok=True)
    took = []
    for _ in range(5):
        daemon = Daemon(folder, "--port", "0", "--no-web")
        daemon.wait_for("console listening")
        took.append(time.perf_counter() - daemon.started)
        daemon.stop()
    return percentile(took, 0.5)


def main() -> None:
    fresh, old = temp_dir(), temp_dir()
    build(fresh, 0)
    build(old, WEEK_RUNS)
    bare = bare_insert_cost(temp_dir())
    fresh_store, fresh_tick = store_cost(fresh / "data"), tick_write_p99(fresh / "data")
    old_store, old_tick = store_cost(old / "data"), tick_write_p99(old / "data")
    fresh_start, old_start = start_up(fresh), start_up(old)
    report(f"history: a fresh database against one a week old ({WEEK_RUNS:,} runs of {MODULES} modules)", [
        ("store a run, fresh (vs bare insert)", fresh_store * 1e6, bare * 1e6, "us", "-"),
        ("store a run, a week old (vs bare)", old_store * 1e6, bare * 1e6, "us", "-"),
        ("store a run, a week old (vs fresh)", old_store * 1e6, fresh_store * 1e6, "us", "<= 2x"),
        ("tick's write p99, a week old (vs fresh)", old_tick * 1e3, fresh_tick * 1e3, "ms", "<= 2x"),
        ("start to console, a week old (vs fresh)", old_start * 1e3, fresh_start * 1e3, "ms", "<= 2x"),
    ])


if __name__ == "__main__":
    main()
