"""One console connection: greeting, password, lines in, answers out, and following the log,
within the console's limits; the server it runs in is a SessionHost."""

from __future__ import annotations

import re
import selectors
import socket
import threading
from typing import NamedTuple, Protocol

from autohome import __version__
from autohome.clock import monotonic_s
from autohome.console.editor import Echo, LineEditor
from autohome.console.telnet import Event, TelnetReader, escape
from autohome.control.commands import Commands, Reply
from autohome.control.penalties import PENALTY_BASE_S, Penalties
from autohome.logs.follow import Follower
from autohome.logs.tree import get_logger

log = get_logger("autohome.console")

PROMPT = "autohome> "
PASSWORD_PROMPT = "password: "
RECV_BYTES = 4096
PASSWORD_TRIES = 3
# A browser's request, at the very start of a connection, before any line limit applies.
_HTTP_START = rb"(?i)^(GET|POST|PUT|HEAD|OPTIONS|DELETE|PATCH|CONNECT|TRACE) "
# A line shaped like an HTTP header ("Host: ...", "Content-Type: ...") before any command worked.
_HTTP_HEADER = rb"^[A-Za-z0-9-]+:[ \t]"
HTTP_SNIFF_BYTES = 8  # enough for "OPTIONS "
# A full console makes room by closing a connection that has neither logged in nor sent a
# command once it has had this long to do so (a burst of real clients evicts no one).
EVICT_AFTER_S = 5.0


class ConsoleLimits(NamedTuple):
    """How much the console lets one client, and all of them, cost."""

    max_line: int = 4096
    max_clients: int = 8
    idle_timeout_s: float = 600.0
    penalty_base_s: float = PENALTY_BASE_S
    login_timeout_s: float = 30.0  # to pass the password prompt, or send a first command
    evict_after_s: float = EVICT_AFTER_S


class SessionHost(Protocol):
    """What a session asks of the server it runs in (server.py)."""

    commands: Commands
    limits: ConsoleLimits
    password: bytes | None
    penalties: Penalties
    stopping: threading.Event

    def following(self, sock: socket.socket, is_following: bool) -> None:
        """The connection began (or stopped) following the log."""
        ...

    def proven(self, sock: socket.socket) -> None:
        """The connection logged in, or sent a command that worked."""
        ...


class Session:
    """The conversation on one connection."""

    def __init__(self, server: SessionHost, sock: socket.socket, address: str, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.address = address
        self.peer = peer
        self.editor = LineEditor(server.limits.max_line, server.commands.complete)
        self.reader = TelnetReader(server.limits.max_line, self.editor.key)
        self.is_authenticated = server.password is None
        self.is_proven = False  # logged in, or sent a command that worked
        self.tries_left = PASSWORD_TRIES
        self._head = b""  # the first bytes, until they are known not to be HTTP
        opened = monotonic_s()
        self._login_by = opened + server.limits.login_timeout_s
        self._last_line = opened

    def serve(self) -> None:
        log.debug("console client connected from %s", self.peer)
        greeting = f"AutoHome {__version__} console. Type 'help' for commands.\n"
        self.sock.sendall(self.reader.offer() + escape(greeting + self._prompt()))
        while True:
            wait_s = self._time_left()
            if wait_s <= 0:
                return
            self.sock.settimeout(wait_s)
            try:
                data = self.sock.recv(RECV_BYTES)
            except TimeoutError:
                continue  # _time_left says which deadline passed
            if not data:
                log.debug("console client %s disconnected", self.peer)
                return
            if self._head is not None and self._is_http(data):
                self.sock.sendall(escape("this is a telnet console, not a web server\n"))
                return
            self.editor.prompt, self.editor.secret = self._prompt(), not self.is_authenticated
            received = self.reader.feed(data)
            out = bytearray(received.reply)
            for item in received.lines:
                if isinstance(item, Echo):
                    out += item.data
                    continue
                self._last_line = monotonic_s()  # idle means: no complete line, not no byte
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
                if reply.follow is not None:
                    if not self._follow(reply.follow, bytes(out)):
                        return
                    out.clear()
                    break  # what was typed after `log -f` went by while following
                out += escape(self._prompt())
            if out:
                self.sock.sendall(bytes(out))

    def _follow(self, follower: Follower, answer: bytes) -> bool:
        """Send the answer, then the log's new entries as they come until the client presses
        Ctrl-C or Enter; False when the client left meanwhile. A client that reads too slowly
        loses the oldest entries and is told how many. The follower is closed whatever happens."""
        self.server.following(self.sock, True)
        try:
            self.sock.settimeout(self.server.limits.idle_timeout_s)  # for sending only
            self.sock.sendall(answer)
            outcome = self._relay(follower)
        finally:
            self.server.following(self.sock, False)
            follower.close()
        if outcome is None:
            log.debug("console client %s disconnected", self.peer)
            return False
        return outcome

    def _relay(self, follower: Follower) -> bool | None:
        """True: the client stopped following; False: it said goodbye; None: it went away."""
        with selectors.DefaultSelector() as watch:
            watch.register(self.sock, selectors.EVENT_READ)
            watch.register(follower, selectors.EVENT_READ)
            while True:
                for key, _ in watch.select():
                    if key.fileobj is follower:
                        entries, lost = follower.take()
                        text = "".join(entry + "\n" for entry in entries)
                        if lost:
                            text = f"[{lost} entries skipped: this client reads too slowly]\n" + text
                        self.sock.sendall(escape(text))
                        continue
                    data = self.sock.recv(RECV_BYTES)
                    if not data:
                        return None
                    received = self.reader.feed(data)
                    if received.reply:
                        self.sock.sendall(received.reply)
                    typed = [item for item in received.lines if not isinstance(item, Echo)]
                    if Event.END in typed:
                        self.sock.sendall(escape("bye\n"))
                        return False
                    if typed:  # Enter, or Ctrl-C
                        self._last_line = monotonic_s()
                        self.sock.sendall(escape("stopped following the log\n" + self._prompt()))
                        return True

    def _time_left(self) -> float:
        """Seconds until this connection's next deadline; at 0 it has been told and is closed."""
        now = monotonic_s()
        idle_left = self._last_line + self.server.limits.idle_timeout_s - now
        login_left = float("inf") if self.is_proven else self._login_by - now
        if login_left <= 0:
            log.info("console client %s did not log in or send a command within %gs; closed",
                     self.peer, self.server.limits.login_timeout_s)
            self._say("\ntoo slow to log in, closing\n")
            return 0.0
        if idle_left <= 0:
            log.info("console client %s idle too long, closed", self.peer)
            self._say("\nidle too long, closing\n")
            return 0.0
        return min(idle_left, login_left)

    def _say(self, text: str) -> None:
        try:
            self.sock.sendall(escape(text))
        except OSError:
            pass  # it left already

    def _is_http(self, data: bytes) -> bool:
        """Look at the connection's first bytes, whatever their length: a web page's request
        is closed before any of it can be read as commands."""
        assert self._head is not None
        self._head += data[:HTTP_SNIFF_BYTES]
        if re.match(_HTTP_START, self._head):
            log.warning("console client %s sent an HTTP request; closed (a web page must not "
                        "drive the console)", self.peer)
            return True
        if len(self._head) >= HTTP_SNIFF_BYTES or b"\n" in self._head:
            self._head = None  # type: ignore[assignment]
        return False

    def _prompt(self) -> str:
        return PROMPT if self.is_authenticated else PASSWORD_PROMPT

    def _answer(self, item: bytes | Event) -> Reply:
        if item is Event.END:
            return Reply("bye", close=True)
        if item is Event.INTERRUPT:
            return Reply("^C")
        if item is Event.ARE_YOU_THERE:
            return Reply(f"[AutoHome {__version__}: yes, still here]")
        if item is Event.LINE_TOO_LONG:
            return Reply(f"line too long (over {self.server.limits.max_line} bytes), ignored")
        if item is Event.SUB_TOO_LONG:
            log.warning("console client %s sent a telnet sub-negotiation with no end; closed", self.peer)
            return Reply("telnet sub-negotiation too long; closing", close=True)
        assert isinstance(item, bytes)
        if not self.is_proven and re.match(_HTTP_HEADER, item):
            log.warning("console client %s sent an HTTP header line; closed (a web page must not "
                        "drive the console)", self.peer)
            return Reply("this is a telnet console, not a web server", close=True)
        if not self.is_authenticated:
            return self._check_password(item)
        line = item.decode("utf-8", errors="replace").strip()
        if line:
            log.debug("console %s: %s", self.peer, line)
        try:
            reply = self.server.commands.execute(line)
        except Exception:
            log.exception("console command %r failed", line)
            return Reply(f"command {line!r} failed, see the log for details")
        if line and not reply.text.startswith("unknown command"):
            self._prove()
        return reply

    def _prove(self) -> None:
        if not self.is_proven:
            self.is_proven = True
            self.server.proven(self.sock)

    def _check_password(self, given: bytes) -> Reply:
        assert self.server.password is not None
        import hmac  # hashlib and OpenSSL: loaded only where a password is set

        if hmac.compare_digest(given.strip(), self.server.password):
            self.is_authenticated = True
            self._prove()
            self.server.penalties.succeeded(self.address)
            log.info("console client %s logged in", self.peer)
            return Reply("welcome")
        self.tries_left -= 1
        failures = self.server.penalties.failed(self.address)
        log.warning("console: wrong password from %s (%d failed in a row from this source)",
                    self.peer, failures)
        # The failing connection waits, not the next right password.
        delay_s = self.server.penalties.delay_s(self.address)
        if delay_s:
            log.warning("console: answering %s %gs late after repeated wrong passwords", self.peer, delay_s)
            if self.server.stopping.wait(delay_s):
                return Reply("shutting down", close=True)
        if self.tries_left == 0:
            return Reply("wrong password; closing", close=True)
        return Reply("wrong password")
