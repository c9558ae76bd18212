"""One console connection: greeting, password, lines in, answers out; and the password back-off."""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import threading
from typing import TYPE_CHECKING

from autohome import __version__
from autohome.commands import Reply
from autohome.telnet import Event, TelnetReader, escape

if TYPE_CHECKING:
    from autohome.console import _TCPServer

log = logging.getLogger("autohome.console")

PROMPT = "autohome> "
PASSWORD_PROMPT = "password: "
RECV_BYTES = 4096
PASSWORD_TRIES = 3
# After this many failures from one address, each further check waits longer (2 s, 4 s, ... 60 s).
FREE_FAILURES = 3
MAX_PENALTY_S = 60.0
PENALTY_BASE_S = 2.0
MAX_TRACKED_ADDRESSES = 1024
_HTTP_FIRST_LINE = rb"(?i)^(GET|POST|PUT|HEAD|OPTIONS|DELETE|PATCH|CONNECT) \S+|^Host:"  # re caches it


class Penalties:
    """Failed passwords per address; repeated failures earn a growing wait."""

    def __init__(self, base_s: float = PENALTY_BASE_S) -> None:
        self._base_s = base_s
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def failed(self, address: str) -> int:
        """Count a failure; return how many there are now."""
        with self._lock:
            self._failures[address] = self._failures.get(address, 0) + 1
            if len(self._failures) > MAX_TRACKED_ADDRESSES:  # many strangers: forget the oldest
                del self._failures[next(iter(self._failures))]
            return self._failures[address]

    def tracked(self) -> int:
        """How many addresses have failures on record."""
        with self._lock:
            return len(self._failures)

    def succeeded(self, address: str) -> None:
        """Forget an address's failures."""
        with self._lock:
            self._failures.pop(address, None)

    def delay_s(self, address: str) -> float:
        """How long to wait before checking this address's next password."""
        with self._lock:
            extra = self._failures.get(address, 0) - FREE_FAILURES
        return 0.0 if extra < 0 else min(self._base_s * 2.0**extra, MAX_PENALTY_S)


class Connection(socketserver.BaseRequestHandler):
    """One client: greet, check the password, read lines, answer each, until it leaves."""

    server: _TCPServer

    def handle(self) -> None:
        address = str(self.client_address[0])
        peer = f"{address}:{self.client_address[1]}"
        threading.current_thread().name = f"console:{peer}"
        sock: socket.socket = self.request
        try:
            Session(self.server, sock, address, peer).serve()
        except OSError as exc:
            log.debug("console client %s went away: %s", peer, exc)
        except Exception:
            log.exception("console connection from %s failed", peer)
        finally:
            self.server.release(sock)


class Session:
    """The conversation on one connection."""

    def __init__(self, server: _TCPServer, sock: socket.socket, address: str, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.address = address
        self.peer = peer
        self.reader = TelnetReader(server.limits.max_line)
        self.is_first_line = True
        self.is_authenticated = server.password is None
        self.tries_left = PASSWORD_TRIES

    def serve(self) -> None:
        log.info("console client connected from %s", self.peer)
        self.sock.settimeout(self.server.limits.idle_timeout_s)
        greeting = f"AutoHome {__version__} console. Type 'help' for commands.\n"
        self.sock.sendall(escape(greeting + self._prompt()))
        while True:
            try:
                data = self.sock.recv(RECV_BYTES)
            except TimeoutError:
                log.info("console client %s idle too long, closed", self.peer)
                self.sock.sendall(escape("\nidle too long, closing\n"))
                return
            if not data:
                log.info("console client %s disconnected", self.peer)
                return
            received = self.reader.feed(data)
            out = bytearray(received.reply)
            for item in received.lines:
                reply = self._answer(item)
                if reply.text:
                    out += escape(reply.text + "\n")
                if reply.close:
                    try:
                        self.sock.sendall(bytes(out))
                    finally:
                        if reply.then is not None:
                            reply.then()
                    return
                out += escape(self._prompt())
            if out:
                self.sock.sendall(bytes(out))

    def _prompt(self) -> str:
        return PROMPT if self.is_authenticated else PASSWORD_PROMPT

    def _answer(self, item: bytes | Event) -> Reply:
        first, self.is_first_line = self.is_first_line, False
        if item is Event.END:
            return Reply("bye", close=True)
        if item is Event.INTERRUPT:
            return Reply("^C")
        if item is Event.ARE_YOU_THERE:
            return Reply(f"[AutoHome {__version__}: yes, still here]")
        if item is Event.LINE_TOO_LONG:
            return Reply(f"line too long (over {self.server.limits.max_line} bytes), ignored")
        assert isinstance(item, bytes)
        if first and re.match(_HTTP_FIRST_LINE, item):
            log.warning("console client %s sent an HTTP request; closed (a web page must not "
                        "drive the console)", self.peer)
            return Reply("this is a telnet console, not a web server", close=True)
        if not self.is_authenticated:
            return self._check_password(item)
        line = item.decode("utf-8", errors="replace").strip()
        if line:
            log.debug("console %s: %s", self.peer, line)
        try:
            return self.server.commands.execute(line)
        except Exception:
            log.exception("console command %r failed", line)
            return Reply(f"command {line!r} failed, see the log for details")

    def _check_password(self, given: bytes) -> Reply:
        assert self.server.password is not None
        delay_s = self.server.penalties.delay_s(self.address)
        if delay_s:
            log.warning("console: slowing down %s by %gs after repeated wrong passwords",
                        self.address, delay_s)
            if self.server.stopping.wait(delay_s):
                return Reply("shutting down", close=True)
        import hmac  # hashlib and OpenSSL: loaded only where a password is set

        if hmac.compare_digest(given.strip(), self.server.password):
            self.is_authenticated = True
            self.server.penalties.succeeded(self.address)
            log.info("console client %s logged in", self.peer)
            return Reply("welcome")
        self.tries_left -= 1
        failures = self.server.penalties.failed(self.address)
        log.warning("console: wrong password from %s (%d failed in a row from that address)",
                    self.peer, failures)
        if self.tries_left == 0:
            return Reply("wrong password; closing", close=True)
        return Reply("wrong password")


