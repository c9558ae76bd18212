"""Isolated runs: one no-op module run in a child process, start to recorded end, against a
bare `subprocess.run([sys.executable, "-c", "pass"])` measured in the same run.

Run: python benchmarks/isolated.py
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from bench import T0, percentile, report, temp_dir
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config

ROUNDS = 21


def bare_once() -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - began


def main() -> None:
    folder = temp_dir() / "modules"
    folder.mkdir()
    (folder / "noop.py").write_text('ISOLATE = True\nINTERVAL = "1d"\n\ndef run(log, notify):\n    pass\n')
    logging.getLogger("autohome").propagate = False
    daemon = build(Config(modules_dir=folder, console_enabled=False, web_enabled=False), FakeClock(T0))
    daemon.registry.load()
    ours, base = [], []
    for _ in range(ROUNDS):  # alternating, so a busy moment hits both alike
        began = time.perf_counter()
        daemon.panel.run_now("noop")
        assert daemon.runner.wait_idle(timeout_s=30)
        ours.append(time.perf_counter() - began)
        base.append(bare_once())
    daemon.shutdown()
    report(f"isolated: one no-op module run in a child process (median of {ROUNDS}, alternating)", [
        ("run, start to recorded end", percentile(ours, 0.5) * 1000, percentile(base, 0.5) * 1000, "ms",
         "<= 1.5x"),
    ])


if __name__ == "__main__":
    main()
