"""Dispatch: 2,000 no-op modules all due at one tick, 8 threads, against bare Thread + Semaphore(8).

Run: python benchmarks/dispatch.py
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from bench import T0, percentile, report, specs, temp_dir

from autohome.app import Main
from autohome.clock import FakeClock
from autohome.config import Config
from autohome.db import open_database
from autohome.logs import setup_logging

COUNT, THREADS = 2000, 8


def baseline() -> tuple[float, list[float]]:
    """Bare threads: a semaphore caps them at 8; each records when it started."""
    starts: list[float] = []
    done = threading.Event()
    slots = threading.Semaphore(THREADS)
    lock = threading.Lock()

    def work() -> None:
        with lock:
            starts.append(time.perf_counter())
            if len(starts) == COUNT:
                done.set()
        slots.release()

    began = time.perf_counter()
    for _ in range(COUNT):
        slots.acquire()
        threading.Thread(target=work).start()
    done.wait()
    total = time.perf_counter() - began
    return total, [s - began for s in starts]


def autohome() -> tuple[float, list[float]]:
    """The real Main, Runner, state database and log file; one tick with every module due."""
    folder = temp_dir()
    logs = setup_logging(folder / "logs", "INFO")
    logging.getLogger("autohome").propagate = False
    starts: list[float] = []
    done = threading.Event()
    lock = threading.Lock()

    def run(log, notify) -> None:
        with lock:
            starts.append(time.perf_counter())
            if len(starts) == COUNT:
                done.set()

    config = replace(Config(), max_threads=THREADS, console_enabled=False)
    main = Main(config, FakeClock(T0), specs(COUNT, run), db=open_database(folder / "data"), logs=logs)
    began = time.perf_counter()
    main.tick(T0)
    done.wait()
    assert main.runner.wait_idle(timeout_s=60)
    total = time.perf_counter() - began
    main.shutdown()
    logs.close()
    return total, [s - began for s in starts]


def main() -> None:
    base_total, base_starts = baseline()
    ours_total, ours_starts = autohome()
    report(f"dispatch: {COUNT} no-op modules due at one tick, {THREADS} threads", [
        ("tick to last run finished", ours_total * 1000, base_total * 1000, "ms", "<= 1.5x"),
        ("tick to run start, p50", percentile(ours_starts, 0.5) * 1000,
         percentile(base_starts, 0.5) * 1000, "ms", "<= 1.5x"),
        ("tick to run start, p99", percentile(ours_starts, 0.99) * 1000,
         percentile(base_starts, 0.99) * 1000, "ms", "<= 1.5x"),
    ])


if __name__ == "__main__":
    main()
