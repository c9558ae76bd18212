"""Flood: a module that logs as fast as it can for 10 s. What does that cost AutoHome's memory?

The daemon runs as a real process (`python main.py`, its terminal /dev/null); its resident
memory is read before the flood (idle, after its first tick) and its peak (VmHWM) after it.
The baseline is a bare Python process that makes the same number of log lines, as strings,
and drops them. Linux only (/proc).

Run: python benchmarks/flood.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench import ROOT, report, rss_mb, temp_dir

FLOOD_S = 10
MODULE = f'''"""Logs as fast as it can for {FLOOD_S} seconds."""
import time
INTERVAL = "1d"
def run(log):
    time.sleep(1)  # (the benchmark reads AutoHome's idle memory meanwhile)
    end, count = time.monotonic() + {FLOOD_S}, 0
    while time.monotonic() < end:
        log.info("flood line %d %s", count, "x" * 80)
        count += 1
    log.info("flooded %d lines", count)
'''


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    folder = temp_dir()
    (folder / "modules").mkdir()
    (folder / "modules" / "flood.py").write_text(MODULE)
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--port", "0", "--no-web"],
                               cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    idle = None
    lines = 0
    for line in process.stderr:
        if idle is None and "module flood started" in line:
            idle = rss_mb(process.pid)
        found = re.search(r"flooded (\d+) lines", line)
        if found:
            lines = int(found.group(1))
        if "module flood finished" in line:
            break
    peak = peak_mb(process.pid)
    process.terminate()
    process.wait(30)
    bare = subprocess.run([sys.executable, "-c", "import time, resource\n"
                           f"end = time.monotonic() + {FLOOD_S}\n"
                           "while time.monotonic() < end:\n    s = 'flood line %d %s' % (1, 'x' * 80)\n"
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"],
                          capture_output=True, text=True, check=True)
    bare_mb = float(bare.stdout)
    assert idle is not None
    report(f"flood: one module logging as fast as it can for {FLOOD_S} s ({lines:,} lines)", [
        ("AutoHome idle, resident", idle, bare_mb, "MB", "-"),
        ("AutoHome's peak above idle", peak - idle, bare_mb, "MB", "<= 100 MB above idle"),
    ])


if __name__ == "__main__":
    main()
