"""The console's server: a socketserver on its own thread, and who may connect.

What each command answers lives in control/commands.py, one connection's conversation and
its limits in session.py; this file accepts clients, counts them, and hangs up on them at
shutdown.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import threading

from autohome.clock import monotonic_s
from autohome.console.session import ConsoleLimits, Session
from autohome.console.telnet import escape
from autohome.control.commands import Commands
from autohome.control.penalties import Penalties
from autohome.logs.tree import get_logger

log = get_logger("autohome.console")


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


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
        self._unproven: list[tuple[socket.socket, float]] = []  # (connection, since), oldest first
        self._following: list[socket.socket] = []  # connections in `log -f`, oldest first
        self._open_lock = threading.Condition()
        super().__init__(address, Connection)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """Start a thread for the client, unless the console is full. When it is full of
        connections that have neither logged in nor sent a command, the oldest of them makes
        room: silent connections cannot lock the real user out."""
        now = monotonic_s()
        with self._open_lock:
            if (len(self._open) >= self.limits.max_clients and self._unproven
                    and now - self._unproven[0][1] >= self.limits.evict_after_s):
                oldest, _ = self._unproven.pop(0)
                log.warning("console full: closing the oldest connection that has neither logged in "
                            "nor sent a command, to let %s in", client_address)
                _hang_up(oldest)
                self._open.discard(oldest)
            if len(self._open) >= self.limits.max_clients and self._following:
                follower = self._following.pop(0)
                log.warning("console full: closing the oldest connection that only follows the log, to let "
                            "%s in (a follower never keeps a command out)", client_address)
                _hang_up(follower)
                self._open.discard(follower)
            is_full = len(self._open) >= self.limits.max_clients
            if not is_full:
                self._open.add(request)
                self._unproven.append((request, now))
                self._open_lock.notify_all()  # for wait_for_clients
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
            self.proven(sock)
            self.following(sock, False)
            self._open_lock.notify_all()

    def following(self, sock: socket.socket, is_following: bool) -> None:
        """The connection began (or stopped) following the log: it may make room for another."""
        with self._open_lock:
            self._following = [other for other in self._following if other is not sock]
            if is_following:
                self._following.append(sock)

    def proven(self, sock: socket.socket) -> None:
        """The connection logged in, or sent a command that worked: it keeps its slot."""
        with self._open_lock:
            self._unproven = [(other, since) for other, since in self._unproven if other is not sock]

    def wait_for_clients(self, count: int, timeout_s: float) -> bool:
        with self._open_lock:
            return self._open_lock.wait_for(lambda: len(self._open) == count, timeout_s)

    def hang_up_all(self) -> None:
        self.stopping.set()
        with self._open_lock:
            for sock in self._open:
                _hang_up(sock)


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

    def fileno(self) -> int | None:
        """The listening socket's descriptor (None: not listening)."""
        return None if self._server is None else self._server.fileno()

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
                        self._accept()
        except Exception:
            log.exception("console stopped serving")

    def _accept(self) -> None:
        # socketserver's public steps, as handle_request() takes them.
        assert self._server is not None
        try:
            request, client_address = self._server.get_request()
        except OSError:
            return  # the client gave up before we accepted
        if self._server.verify_request(request, client_address):
            try:
                self._server.process_request(request, client_address)
            except (OSError, RuntimeError):  # no thread for it: that client only is turned away
                log.exception("console could not serve %s", client_address)
                self._server.shutdown_request(request)
        else:
            self._server.shutdown_request(request)

    def wait_for_clients(self, count: int, timeout_s: float) -> bool:
        """Block until exactly `count` clients are connected (tests, benchmarks)."""
        return self._server is not None and self._server.wait_for_clients(count, timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, hang up every client, and wait for their threads."""
        if self._server is None or self._thread is None:
            return
        assert self._wake_r is not None and self._wake_w is not None
        with contextlib.suppress(OSError):  # its sockets closed under it: it has stopped already
            self._wake_w.send(b"x")
        self._thread.join(timeout_s)
        self._server.hang_up_all()
        for close in (self._server.server_close, self._wake_r.close, self._wake_w.close):
            with contextlib.suppress(OSError):
                close()  # server_close joins the connection threads
        self._server = None
