"""Tick cost: one tick's own work with 1,000 module files loaded, none due and all due.

The baseline is the least any tick must do to notice edited files: one directory read and
one stat per module file.

Run: python benchmarks/tick_cost.py
"""

from __future__ import annotations

import logging
import os
import time

from bench import T0, percentile, report, temp_dir, write_modules
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config
from autohome.logs.setup import setup_logging
from autohome.storage.db import open_database

COUNT, REPEATS = 1000, 50


def baseline(folder) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        with os.scandir(folder) as entries:
            for entry in entries:
                entry.stat()
        times.append(time.perf_counter() - began)
    return percentile(times, 0.5)


def main() -> None:
    folder = temp_dir()
    modules = write_modules(folder, COUNT, interval="1h")
    logs = setup_logging(folder / "logs", "INFO")
    logging.getLogger("autohome").propagate = False
    clock = FakeClock(T0)
    daemon = build(Config(modules_dir=modules, console_enabled=False, web_enabled=False), clock,
                   db=open_database(folder / "data"), logs=logs)
    daemon.registry.load()

    began = time.perf_counter()
    daemon.tick(clock.now())  # all due
    all_due = time.perf_counter() - began
    assert daemon.runner.wait_idle(timeout_s=60)
    daemon.states.flush()  # the burst's records and lines are written before ticks are timed
    logs.flush()

    none_due = []
    for _ in range(REPEATS):
        clock.advance(30)
        began = time.perf_counter()
        assert daemon.tick(clock.now()) == []
        none_due.append(time.perf_counter() - began)
    base = baseline(modules)
    daemon.shutdown()
    logs.close()
    report(f"tick cost: {COUNT} modules loaded", [
        ("one tick, none due (median)", percentile(none_due, 0.5) * 1000, base * 1000, "ms", "< 5 ms"),
        ("one tick, none due (p99)", percentile(none_due, 0.99) * 1000, base * 1000, "ms", ""),
        ("one tick, all due (runs compete)", all_due * 1000, base * 1000, "ms", ""),
    ])


if __name__ == "__main__":
    main()
