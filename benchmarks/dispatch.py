"""Dispatch: 2,000 no-op modules all due at one tick, 8 threads, against bare Thread + Semaphore(8).

Run: python benchmarks/dispatch.py
"""

from __future__ import annotations

import gc
import logging
import statistics
import threading
import time

from bench import T0, percentile, report, specs, temp_dir

from autohome.app import build
from autohome.clock import FakeClock
from autohome.config import Config
from autohome.db import open_database
from autohome.logs import setup_logging

COUNT, THREADS, ROUNDS = 2000, 8, 9


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

    config = Config(max_threads=THREADS, console_enabled=False, web_enabled=False)
    main = build(config, FakeClock(T0), specs(COUNT, run), db=open_database(folder / "data"), logs=logs)
    gc.freeze()  # as main.py does once start-up is over
    began = time.perf_counter()
    main.tick(T0)
    done.wait()
    assert main.runner.wait_idle(timeout_s=60)
    total = time.perf_counter() - began
    main.shutdown()
    logs.close()
    return total, [s - began for s in starts]


def main() -> None:
    # One round is over in well under a second, so a busy neighbour or an unlucky
    # scheduling decision moves it by a third. Rounds alternate baseline and AutoHome, and
    # each figure is the median over the rounds; the spread of the ratio is shown too.
    rounds = []
    for _ in range(ROUNDS):
        base_total, base_starts = baseline()
        ours_total, ours_starts = autohome()
        rounds.append((ours_total, base_total, ours_starts, base_starts))
    ratios = sorted(ours / base for ours, base, _, _ in rounds)

    def median(values: list[float]) -> float:
        return statistics.median(values) * 1000

    report(f"dispatch: {COUNT} no-op modules due at one tick, {THREADS} threads "
           f"(median of {ROUNDS} rounds)", [
        ("tick to last run finished", median([r[0] for r in rounds]), median([r[1] for r in rounds]),
         "ms", "<= 1.5x"),
        ("tick to run start, p50", median([percentile(r[2], 0.5) for r in rounds]),
         median([percentile(r[3], 0.5) for r in rounds]), "ms", "<= 1.5x"),
        ("tick to run start, p99", median([percentile(r[2], 0.99) for r in rounds]),
         median([percentile(r[3], 0.99) for r in rounds]), "ms", "<= 1.5x"),
    ])
    print(f"ratio of each round, finished: {' '.join(f'{ratio:.2f}' for ratio in ratios)}")


if __name__ == "__main__":
    main()
