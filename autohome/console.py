"""The console's wire side: a socketserver on its own thread, telnet bytes, passwords, limits.

What each command answers lives in commands.py; this file decides who may talk, reads
their bytes safely, and writes the answers back.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import selectors
import socket
import socketserver
import threading
from dataclasses import dataclass

from autohome import __version__
from autohome.commands import Commands, Reply
from autohome.telnet import Event, TelnetReader, escape

log = logging.getLogger(__name__)

PROMPT = "autohome> "
PASSWORD_PROMPT = "password: "
RECV_BYTES = 4096
PASSWORD_TRIES = 3
# After this many failures from one address, each further check waits longer (2 s, 4 s, ... 60 s).
FREE_FAILURES = 3
MAX_PENALTY_S = 60.0
PENALTY_BASE_S = 2.0
MAX_TRACKED_ADDRESSES = 1024
_HTTP_FIRST_LINE = re.compile(
    rb"^(GET|POST|PUT|HEAD|OPTIONS|DELETE|PATCH|CONNECT) \S+|^Host:", re.IGNORECASE
)


def is_loopback(host: str) -> bool:
    """Whether an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class ConsoleLimits:
    """How much the console lets one client, and all of them, cost."""

    max_line: int = 4096
    max_clients: int = 8
    idle_timeout_s: float = 600.0
    penalty_base_s: float = PENALTY_BASE_S


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

    def succeeded(self, address: str) -> None:
        """Forget an address's failures."""
        with self._lock:
            self._failures.pop(address, None)

    def delay_s(self, address: str) -> float:
        """How long to wait before checking this address's next password."""
        with self._lock:
            extra = self._failures.get(address, 0) - FREE_FAILURES
        return 0.0 if extra < 0 else min(self._base_s * 2.0**extra, MAX_PENALTY_S)


class _Connection(socketserver.BaseRequestHandler):
    """One client: greet, check the password, read lines, answer each, until it leaves."""

    server: _TCPServer

    def handle(self) -> None:
        address = str(self.client_address[0])
        peer = f"{address}:{self.client_address[1]}"
        threading.current_thread().name = f"console:{peer}"
        sock: socket.socket = self.request
        try:
            _Session(self.server, sock, address, peer).serve()
        except OSError as exc:
            log.debug("console client %s went away: %s", peer, exc)
        except Exception:
            log.exception("console connection from %s failed", peer)
        finally:
            self.server.release(sock)


class _Session:
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
        if first and _HTTP_FIRST_LINE.match(item):
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


class _TCPServer(socketserver.ThreadingTCPServer):
    """ThreadingTCPServer that counts connections, refuses extras, and can hang up on all."""

    allow_reuse_address = True
    request_queue_size = 64  # the default 5 makes a burst of clients wait a second for SYN retries
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], commands: Commands, limits: ConsoleLimits,
                 password: str | None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.commands = commands
        self.limits = limits
        self.password = None if password is None else password.encode("utf-8")
        self.penalties = Penalties(limits.penalty_base_s)
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Condition()
        super().__init__(address, _Connection)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Start a thread for the client, unless the console is full."""
        with self._open_lock:
            is_full = len(self._open) >= self.limits.max_clients
            if not is_full:
                self._open.add(request)
        if is_full:
            log.warning("console full (%d clients, AUTOHOME_CONSOLE_MAX_CLIENTS); refused %s",
                        self.limits.max_clients, client_address)
            try:
                request.sendall(escape(f"too many console connections "
                                       f"({self.limits.max_clients}); try again later\n"))
            except OSError:
                pass  # it left already
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def release(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)
            self._open_lock.notify_all()

    def wait_for_clients(self, count: int, timeout_s: float) -> bool:
        with self._open_lock:
            return self._open_lock.wait_for(lambda: len(self._open) == count, timeout_s)

    def hang_up_all(self) -> None:
        self.stopping.set()
        with self._open_lock:
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already gone


class ConsoleServer:
    """The console on its own thread; `start()` binds, `stop()` closes everything and joins."""

    def __init__(
        self,
        host: str,
        port: int,
        commands: Commands,
        limits: ConsoleLimits | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.commands = commands
        self.limits = limits or ConsoleLimits()
        self.password = password or None
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("console is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and start serving; raises OSError if the address cannot be bound."""
        self._server = _TCPServer((self.host, self.port), self.commands, self.limits, self.password)
        self._wake_r, self._wake_w = socket.socketpair()
        # Built here, not on the thread, so everything the console holds exists once start() returns.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server.socket, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="console", daemon=True)
        self._thread.start()
        return self.address

    def _serve(self) -> None:
        # Block on the listening socket and a wake-up socket: no periodic polling.
        assert self._server is not None and self._selector is not None
        try:
            with self._selector as selector:
                while True:
                    for key, _ in selector.select():
                        if key.fileobj is self._wake_r:
                            return
                        # The socket is known to be readable: accept directly, instead of
                        # handle_request(), which builds (and drops) a selector per client.
                        self._server._handle_request_noblock()
        except Exception:
            log.exception("console stopped serving")

    def wait_for_clients(self, count: int, timeout_s: float) -> bool:
        """Block until exactly `count` clients are connected (tests, benchmarks)."""
        return self._server is not None and self._server.wait_for_clients(count, timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, hang up every client, and wait for their threads."""
        if self._server is None or self._thread is None:
            return
        assert self._wake_r is not None and self._wake_w is not None
        self._wake_w.send(b"x")
        self._thread.join(timeout_s)
        self._server.hang_up_all()
        self._server.server_close()  # joins the connection threads
        self._wake_r.close()
        self._wake_w.close()
        self._server = None
