"""Idle cost: the real daemon, console on, 50 modules due hourly, left alone for 60 s.

Counts CPU time and voluntary wake-ups summed over all its threads (/proc, Linux), beside
a bare `python` process sleeping for the same time.

Run: python benchmarks/idle.py [SECONDS]
"""

from __future__ import annotations

import subprocess
import sys
import threading

from bench import Daemon, report, task_figures, temp_dir, write_modules


def measure(pid: int, seconds: float) -> tuple[float, int]:
    cpu0, wake0 = task_figures(pid)
    threading.Event().wait(seconds)
    cpu1, wake1 = task_figures(pid)
    return cpu1 - cpu0, wake1 - wake0


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    folder = temp_dir()
    write_modules(folder, 50, interval="1h")
    daemon = Daemon(folder, "--port", "0")
    daemon.wait_for("module m00049 finished")
    threading.Event().wait(1.0)  # let start-up settle
    ours_cpu, ours_wakes = measure(daemon.process.pid, seconds)
    daemon.stop()

    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
    threading.Event().wait(1.0)
    base_cpu, base_wakes = measure(bare.pid, seconds)
    bare.kill()
    bare.wait()
    per_minute = 60.0 / seconds
    report(f"idle: 50 hourly modules, console on, {seconds:g} s", [
        ("CPU seconds per minute", ours_cpu * per_minute, base_cpu * per_minute, " s", "< 0.005 s"),
        ("wake-ups per minute", ours_wakes * per_minute, base_wakes * per_minute, "", "<= 10"),
    ])


if __name__ == "__main__":
    main()
