"""Start-up: `python main.py` until the console accepts a connection, against a bare Python
process that binds and listens on a socket (the interpreter's own start-up cost). Both are
found ready the same way: by connecting every millisecond until the port accepts.

Run: python benchmarks/startup.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from bench import Daemon, percentile, report, temp_dir, write_modules

RUNS = 15  # alternating, so that a busy moment of the machine hits both alike
BARE = ("import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
        "sys.stdin.read()")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until_connected(port: int, began: float) -> float:
    """Connect again and again (a millisecond apart) until the port accepts: when it does is
    what a user's telnet sees, whatever the log says and whenever it says it."""
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return time.perf_counter() - began
        except ConnectionRefusedError:
            time.sleep(0.001)


def autohome_once(folder) -> float:
    port = free_port()
    daemon = Daemon(folder, "--port", str(port))
    took = until_connected(port, daemon.started)
    daemon.stop()  # a console visit is logged at DEBUG since #23: nothing to wait for
    return took


def bare_once() -> float:
    port = free_port()
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", BARE, str(port)], stdin=subprocess.PIPE)
    took = until_connected(port, began)
    process.kill()
    process.wait()
    return took


def main() -> None:
    folder = temp_dir()
    write_modules(folder, 3)
    autohome_once(folder)  # the first start writes the bytecode caches
    ours, base = [], []
    for _ in range(RUNS):
        ours.append(autohome_once(folder))
        base.append(bare_once())
    report(f"start-up: main.py until the console accepts (median of {RUNS}, alternating)", [
        ("start to first connection", percentile(ours, 0.5), percentile(base, 0.5), " s", "<= 3x"),
    ])


if __name__ == "__main__":
    main()
