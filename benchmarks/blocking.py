"""Blocking work: 200 modules that each sleep 50 ms, 8 threads; against the ideal and bare threads.

Run: python benchmarks/blocking.py
"""

from __future__ import annotations

import logging
import threading
import time

from bench import T0, report, specs, temp_dir
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config
from autohome.logs.setup import setup_logging
from autohome.storage.db import open_database

COUNT, THREADS, WORK_S = 200, 8, 0.05


def baseline() -> float:
    done, slots = threading.Barrier(COUNT + 1), threading.Semaphore(THREADS)

    def work() -> None:
        time.sleep(WORK_S)
        slots.release()
        done.wait()

    began = time.perf_counter()
    for _ in range(COUNT):
        slots.acquire()
        threading.Thread(target=work).start()
    done.wait()
    return time.perf_counter() - began


def autohome() -> tuple[float, int]:
    folder = temp_dir()
    logs = setup_logging(folder / "logs", "INFO")
    logging.getLogger("autohome").propagate = False
    main = build(Config(max_threads=THREADS, console_enabled=False, web_enabled=False), FakeClock(T0),
                 specs(COUNT, lambda log, notify: time.sleep(WORK_S)), db=open_database(folder / "data"),
                 logs=logs)
    began = time.perf_counter()
    main.tick(T0)
    assert main.runner.wait_idle(timeout_s=60)
    total = time.perf_counter() - began
    ran = sum(1 for view in main.panel.module_views() if view.status.last_run is not None)
    main.shutdown()
    logs.close()
    return total, ran


def main() -> None:
    ideal = COUNT * WORK_S / THREADS
    base = baseline()
    ours, ran = autohome()
    report(f"blocking: {COUNT} modules sleeping {WORK_S * 1000:.0f} ms, {THREADS} threads", [
        ("all runs finished (vs ideal)", ours, ideal, " s", "<= 1.1x ideal"),
        ("all runs finished (vs bare threads)", ours, base, " s", ""),
        ("runs completed (of 200)", ran, COUNT, "", "all, none dropped"),
    ])


if __name__ == "__main__":
    main()
