"""Idle cost: the real daemon, console and status page on, 50 modules due hourly, left alone
for 60 s.

Counts CPU time and voluntary wake-ups summed over all its threads (/proc, Linux), beside
a bare `python` process sleeping for the same time, and beside the same daemon with the
status page off (AUTOHOME_WEB_PORT=off): a page nobody has open must cost (almost) nothing.

Run: python benchmarks/idle.py [SECONDS]
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

from bench import Daemon, report, task_figures, temp_dir, write_modules


def measure(pid: int, seconds: float) -> tuple[float, int]:
    cpu0, wake0 = task_figures(pid)
    threading.Event().wait(seconds)
    cpu1, wake1 = task_figures(pid)
    return cpu1 - cpu0, wake1 - wake0


def idle_daemon(seconds: float, extra_env: dict[str, str] | None = None,
                needs_network: int = 0) -> tuple[float, int]:
    """CPU and wake-ups of the real daemon left alone, once its first tick's runs are over."""
    folder = temp_dir()
    write_modules(folder, 50, interval="1h", needs_network=needs_network)
    daemon = Daemon(folder, "--port", "0", extra_env=extra_env)
    daemon.wait_for("module m00049 finished")
    threading.Event().wait(1.0)  # let start-up settle
    figures = measure(daemon.process.pid, seconds)
    daemon.stop()
    return figures


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    ours_cpu, ours_wakes = idle_daemon(seconds, {"AUTOHOME_WEB_PORT": "0"})
    off_cpu, off_wakes = idle_daemon(seconds, {"AUTOHOME_WEB_PORT": "off"})
    # Pushover configured (at a port where nothing listens: with nothing queued, nothing is sent).
    pushover = {"PUSHOVER_TOKEN": "a" * 30, "PUSHOVER_USER": "u" * 30,
                "PUSHOVER_API_URL": f"http://127.0.0.1:{free_port()}/1/messages.json"}
    _, notify_wakes = idle_daemon(seconds, {**pushover, "AUTOHOME_WEB_PORT": "0"})
    # Half the modules NEED the network, the probe a loopback listener (online).
    with socket.create_server(("127.0.0.1", 0)) as probe:
        online = {"AUTOHOME_WEB_PORT": "0", "AUTOHOME_NETWORK_PROBE": f"127.0.0.1:{probe.getsockname()[1]}"}
        needs_cpu, needs_wakes = idle_daemon(seconds, online, needs_network=25)

    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
    threading.Event().wait(1.0)
    base_cpu, base_wakes = measure(bare.pid, seconds)
    bare.kill()
    bare.wait()
    per_minute = 60.0 / seconds
    report(f"idle: 50 hourly modules, console and status page on, {seconds:g} s", [
        ("CPU seconds per minute", ours_cpu * per_minute, base_cpu * per_minute, " s", "< 0.005 s"),
        ("wake-ups per minute", ours_wakes * per_minute, base_wakes * per_minute, "", "<= 10"),
        ("wake-ups per minute, Pushover set", notify_wakes * per_minute, base_wakes * per_minute, "",
         "<= 10"),
        ("CPU s/min, page on vs off", ours_cpu * per_minute, off_cpu * per_minute, " s", "<= 1.10x"),
        ("wake-ups/min, page on vs off", ours_wakes * per_minute, off_wakes * per_minute, "", "<= 1.10x"),
        ("CPU s/min, 25 NEED the network vs none", needs_cpu * per_minute, ours_cpu * per_minute, " s",
         "<= 1.10x"),
        ("wake-ups/min, 25 NEED the network vs none", needs_wakes * per_minute, ours_wakes * per_minute, "",
         "<= 1.10x"),
    ])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
