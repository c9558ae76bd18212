"""Memory: resident size of the idle daemon with 50 modules loaded, beside a bare `python`.

Run: python benchmarks/memory.py
"""

from __future__ import annotations

import subprocess
import sys
import threading

from bench import Daemon, report, rss_mb, temp_dir, write_modules


def main() -> None:
    folder = temp_dir()
    write_modules(folder, 50, interval="1h")
    daemon = Daemon(folder, "--port", "0")
    daemon.wait_for("module m00049 finished")
    threading.Event().wait(1.0)
    ours = rss_mb(daemon.process.pid)
    daemon.stop()
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
    threading.Event().wait(1.0)
    base = rss_mb(bare.pid)
    bare.kill()
    bare.wait()
    report("memory: idle daemon, 50 modules", [("resident memory", ours, base, "MB", "< 40 MB")])


if __name__ == "__main__":
    main()
