"""A raw socket client for the console, reading up to each prompt."""

from __future__ import annotations

import socket

from autohome.app import Main
from support.clock import WAIT_S


class ConsoleClient:
    """A raw socket client for the console that reads up to each prompt."""

    PROMPT = b"autohome> "

    def __init__(self, port: int, host: str = "127.0.0.1", greeting_ends: bytes | None = PROMPT,
                 sock: socket.socket | None = None, received: bytes = b"") -> None:
        """Connect (or take a connected `sock` and what it already received) and read the
        greeting up to `greeting_ends` (None: read nothing yet)."""
        self.sock = sock or socket.create_connection((host, port), timeout=WAIT_S)
        self.buffer = received
        self.greeting = b"" if greeting_ends is None else self.read_until(greeting_ends)

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; got {self.buffer!r}")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def read_all(self) -> bytes:
        """Everything until the server closes the connection."""
        data = self.buffer
        while chunk := self.sock.recv(65536):
            data += chunk
        self.buffer = b""
        return data

    def command(self, line: str) -> str:
        """Send a line, return the answer without the trailing prompt."""
        self.sock.sendall(line.encode() + b"\r\n")
        return self.read_until(self.PROMPT)[: -len(self.PROMPT)].decode()

    def close(self) -> None:
        self.sock.close()


def console_port(main: Main) -> int:
    """The port a started daemon's console listens on."""
    assert main.console is not None
    return main.console.address[1]
