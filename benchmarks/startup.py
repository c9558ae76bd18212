"""Start-up: `python main.py` until the console accepts a connection, against a bare Python
process that binds and listens on a socket (the interpreter's own start-up cost).

Run: python benchmarks/startup.py
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

from bench import Daemon, percentile, report, temp_dir, write_modules

RUNS = 7
BARE = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()")


def until_connected(port: int, began: float) -> float:
    socket.create_connection(("127.0.0.1", port)).close()
    return time.perf_counter() - began


def autohome_once(folder) -> float:
    daemon = Daemon(folder, "--port", "0")
    line = daemon.wait_for("console listening on")
    port = int(re.search(r"listening on [\d.]+:(\d+)", line).group(1))  # type: ignore[union-attr]
    took = until_connected(port, daemon.started)
    daemon.stop()
    return took


def bare_once() -> float:
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", BARE], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    took = until_connected(int(process.stdout.readline()), began)
    process.kill()
    process.wait()
    return took


def main() -> None:
    folder = temp_dir()
    write_modules(folder, 3)
    ours = [autohome_once(folder) for _ in range(RUNS)]
    base = [bare_once() for _ in range(RUNS)]
    report(f"start-up: main.py until the console accepts (median of {RUNS})", [
        ("start to first connection", percentile(ours, 0.5), percentile(base, 0.5), " s", "< 0.5 s"),
    ])


if __name__ == "__main__":
    main()
