"""Console: 32 concurrent clients each sending `modules` 100 times against 200 modules, and
one client alone sending `status` 1,000 times (an idle console).

The baseline is a bare socketserver.ThreadingTCPServer answering each line with the same
bytes, prepared in advance, on the same machine in the same run.

Run: python benchmarks/console_load.py
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time

from bench import T0, percentile, report, specs, temp_dir
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config
from autohome.logs.setup import setup_logging
from autohome.storage.db import open_database

CLIENTS, COMMANDS, MODULES = 32, 100, 200
STATUS_COMMANDS = 1000
PROMPT = b"autohome> "


def drive(port: int, command: bytes = b"modules", clients: int = CLIENTS,
          commands: int = COMMANDS) -> list[float]:
    """Every client's per-command latency, in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client() -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        buffer = b""
        while PROMPT not in buffer:
            buffer += sock.recv(65536)
        start.wait()
        mine = []
        for _ in range(commands):
            began = time.perf_counter()
            sock.sendall(command + b"\r\n")
            buffer = b""
            while not buffer.endswith(PROMPT):
                buffer += sock.recv(65536)
            mine.append(time.perf_counter() - began)
        sock.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def baseline(table: bytes, **drive_args: object) -> list[float]:
    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(PROMPT)
            buffer = b""
            while chunk := self.request.recv(4096):
                buffer += chunk
                while b"\n" in buffer:
                    _, buffer = buffer.split(b"\n", 1)
                    self.request.sendall(table + PROMPT)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        request_queue_size = 64

    server = Server(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return drive(server.server_address[1], **drive_args)  # type: ignore[arg-type]
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    folder = temp_dir()
    logs = setup_logging(folder / "logs", "INFO")
    logging.getLogger("autohome").propagate = False
    config = Config(console_port=0, console_max_clients=CLIENTS + 8, web_enabled=False)
    daemon = build(config, FakeClock(T0), specs(MODULES, lambda log, notify: None),
                   db=open_database(folder / "data"), logs=logs)
    daemon.start()
    daemon.tick(T0)
    assert daemon.runner.wait_idle(timeout_s=60)
    assert daemon.console is not None
    port = daemon.console.address[1]
    table = daemon.console.commands.execute("modules").text.replace("\n", "\r\n").encode() + b"\r\n"
    status = daemon.console.commands.execute("status").text.replace("\n", "\r\n").encode() + b"\r\n"
    ours = drive(port)
    ours_status = drive(port, b"status", clients=1, commands=STATUS_COMMANDS)
    daemon.shutdown()
    logs.close()
    base = baseline(table)
    base_status = baseline(status, command=b"status", clients=1, commands=STATUS_COMMANDS)
    report(f"console: {CLIENTS} clients x {COMMANDS} 'modules' on {MODULES} modules; "
           f"1 client x {STATUS_COMMANDS} 'status'", [
        ("modules latency p50", percentile(ours, 0.5) * 1000, percentile(base, 0.5) * 1000, "ms", ""),
        ("modules latency p99", percentile(ours, 0.99) * 1000, percentile(base, 0.99) * 1000, "ms",
         "< 20 ms"),
        ("status latency p50", percentile(ours_status, 0.5) * 1000, percentile(base_status, 0.5) * 1000,
         "ms", ""),
        ("status latency p99", percentile(ours_status, 0.99) * 1000,
         percentile(base_status, 0.99) * 1000, "ms", "< 2 ms"),
    ])


if __name__ == "__main__":
    main()
