"""The telnet console: a socketserver on its own thread and the table of commands it understands."""

from __future__ import annotations

import logging
import selectors
import shlex
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol

from autohome import __version__
from autohome.durations import format_duration
from autohome.state import ModuleStatus, RunRecord
from autohome.telnet import Event, TelnetReader, escape

log = logging.getLogger(__name__)

PROMPT = "autohome> "
RECV_BYTES = 4096


@dataclass(frozen=True)
class ModuleView:
    """What the console shows about one module."""

    name: str
    state: str  # idle / running / overrun / queued / paused / broken
    schedule: str  # "every 5m", "daily 08:00", "cron */15 * * * *"
    status: ModuleStatus
    next_run: datetime | None
    description: str = ""
    problem: str = ""  # why it is broken, or why its last edit was not loaded
    path: str = ""
    timeout: timedelta | None = None


class Controller(Protocol):
    """What the console may ask of the daemon."""

    def module_views(self) -> list[ModuleView]:
        """Every module, loaded or broken, sorted by name."""
        ...

    def recent_lines(self, name: str, count: int) -> list[str]:
        """The module's most recent log lines."""
        ...

    def history(self, name: str, count: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        ...

    def reload(self) -> str:
        """Re-read changed module files now; say what changed."""
        ...

    def run_now(self, name: str) -> str:
        """Run the module now through the thread cap; say what happened."""
        ...

    def set_paused(self, name: str, paused: bool) -> str:
        """Pause or resume the module's scheduled runs; say what happened."""
        ...

    def request_stop(self) -> None:
        """Shut AutoHome down."""
        ...


@dataclass(frozen=True)
class Reply:
    """A command's answer, and whether the connection should close after it."""

    text: str
    close: bool = False


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def format_time(moment: datetime | None, zone: tzinfo) -> str:
    """A moment in the local zone, or '-'."""
    return "-" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"


def _outcome(run: RunRecord, width: int = 60) -> str:
    outcome = "ok" if run.is_ok else f"error: {run.error}"
    return outcome if len(outcome) <= width else outcome[: width - 1] + "…"


class Commands:
    """The console's command table; each command returns text and never touches the socket."""

    def __init__(self, controller: Controller, zone: tzinfo = timezone.utc) -> None:
        self.controller = controller
        self.zone = zone
        self.table: dict[str, tuple[str, Callable[[list[str]], Reply]]] = {
            "help": ("list the commands", self._help),
            "modules": ("table of every module: state, interval, last and next run", self._modules),
            "modules read NAME": ("a module's description, recent runs and log lines", self._read),
            "modules run NAME": ("run a module now (through the thread cap)", self._run),
            "modules pause NAME": ("stop a module's scheduled runs", self._pause),
            "modules start NAME": ("resume a paused module", self._start),
            "modules reload": ("pick up edited, added and removed module files now", self._reload),
            "quit": ("close this connection", self._quit),
            "shutdown": ("stop AutoHome (running modules may finish)", self._shutdown),
        }

    def execute(self, line: str) -> Reply:
        """Run one command line."""
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if not words:
            return Reply("")
        command = words[0].lower()
        if command in ("help", "?"):
            return self._help(words[1:])
        if command in ("quit", "exit", "logout"):
            return self._quit(words[1:])
        if command == "shutdown":
            return self._shutdown(words[1:])
        if command == "modules":
            action = words[1].lower() if len(words) > 1 else "list"
            handlers = {"list": self._modules, "read": self._read, "run": self._run,
                        "pause": self._pause, "start": self._start, "reload": self._reload}
            if action not in handlers:
                return Reply(f"unknown action 'modules {words[1]}', try help")
            return handlers[action](words[2:])
        return Reply(f"unknown command {words[0]!r}, try help")

    def _help(self, _: list[str]) -> Reply:
        width = max(len(usage) for usage in self.table)
        lines = [f"{usage.ljust(width)}  {text}" for usage, (text, _) in self.table.items()]
        return Reply("\n".join(lines))

    def _quit(self, _: list[str]) -> Reply:
        return Reply("bye", close=True)

    def _shutdown(self, _: list[str]) -> Reply:
        self.controller.request_stop()
        return Reply("shutting down AutoHome", close=True)

    def _modules(self, _: list[str]) -> Reply:
        views = self.controller.module_views()
        if not views:
            return Reply("no modules: put a .py file with INTERVAL and run(log, notify) in modules/")
        rows = []
        for view in views:
            if view.state == "broken":
                rows.append([view.name, "broken", "-", view.problem[:70], "-"])
                continue
            last = view.status.last_run
            last_text = "never" if last is None else (
                f"{format_time(last.started, self.zone)} ({last.duration_s:.2f}s) {_outcome(last)}")
            if view.problem:
                last_text += " [edit not loaded, see modules read]"
            next_run = "paused" if view.state == "paused" else format_time(view.next_run, self.zone)
            rows.append([view.name, view.state, view.schedule, last_text, next_run])
        return Reply(format_table(["NAME", "STATE", "SCHEDULE", "LAST RUN", "NEXT RUN"], rows))

    def _find(self, args: list[str], usage: str) -> ModuleView | Reply:
        if len(args) != 1:
            return Reply(f"usage: {usage} NAME (see 'modules' for names)")
        for view in self.controller.module_views():
            if view.name == args[0]:
                return view
        return Reply(f"no module named {args[0]!r}, see 'modules' for the list")

    def _read(self, args: list[str]) -> Reply:
        view = self._find(args, "modules read")
        if isinstance(view, Reply):
            return view
        next_run = "paused" if view.state == "paused" else format_time(view.next_run, self.zone)
        lines = [
            f"{view.name}: {view.description or '(no description: add a docstring)'}",
            f"file:      {view.path}",
            f"state:     {view.state}",
            f"schedule:  {view.schedule}",
            f"next run:  {next_run if view.state != 'broken' else '-'}",
        ]
        if view.timeout is not None:
            lines.append(f"timeout:   {format_duration(view.timeout)}")
        if view.status.running_since is not None:
            lines.append(f"running since {format_time(view.status.running_since, self.zone)}")
        if view.problem:
            lines.append(f"problem:   {view.problem}")
        history = self.controller.history(view.name, 10)
        if history:
            failed = sum(not run.is_ok for run in history)
            lines.append(f"recent runs ({len(history)} shown, {failed} failed), newest first:")
            for run in history:
                started = format_time(run.started, self.zone)
                lines.append(f"  {started}  {run.duration_s:8.2f}s  {_outcome(run, 100)}")
        else:
            lines.append("recent runs: none yet")
        recent = self.controller.recent_lines(view.name, 10)
        lines.append("recent log lines:" if recent else "recent log lines: none since start")
        lines.extend(f"  {line}" for line in recent)
        return Reply("\n".join(lines))

    def _run(self, args: list[str]) -> Reply:
        view = self._find(args, "modules run")
        return view if isinstance(view, Reply) else Reply(self.controller.run_now(view.name))

    def _pause(self, args: list[str]) -> Reply:
        view = self._find(args, "modules pause")
        if isinstance(view, Reply):
            return view
        return Reply(self.controller.set_paused(view.name, True))

    def _reload(self, _: list[str]) -> Reply:
        return Reply(self.controller.reload())

    def _start(self, args: list[str]) -> Reply:
        view = self._find(args, "modules start")
        if isinstance(view, Reply):
            return view
        return Reply(self.controller.set_paused(view.name, False))


class _Connection(socketserver.BaseRequestHandler):
    """One client: greet, read lines, answer each, until quit or disconnect."""

    server: _TCPServer

    def handle(self) -> None:
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        threading.current_thread().name = f"console:{peer}"
        sock: socket.socket = self.request
        self.server.track(sock, add=True)
        try:
            self._serve(sock, peer)
        except OSError as exc:
            log.debug("console client %s went away: %s", peer, exc)
        except Exception:
            log.exception("console connection from %s failed", peer)
        finally:
            self.server.track(sock, add=False)

    def _serve(self, sock: socket.socket, peer: str) -> None:
        log.info("console client connected from %s", peer)
        sock.settimeout(self.server.idle_timeout_s)
        reader = TelnetReader(self.server.max_line)
        sock.sendall(escape(f"AutoHome {__version__} console. Type 'help' for commands.\n{PROMPT}"))
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except TimeoutError:
                sock.sendall(escape("\nidle too long, closing\n"))
                return
            if not data:
                log.info("console client %s disconnected", peer)
                return
            received = reader.feed(data)
            out = bytearray(received.reply)
            for item in received.lines:
                reply = self._answer(item, peer)
                if reply.text:
                    out += escape(reply.text + "\n")
                if reply.close:
                    sock.sendall(bytes(out))
                    return
                out += escape(PROMPT)
            if out:
                sock.sendall(bytes(out))

    def _answer(self, item: bytes | Event, peer: str) -> Reply:
        if item is Event.END:
            return Reply("bye", close=True)
        if item is Event.INTERRUPT:
            return Reply("^C")
        if item is Event.ARE_YOU_THERE:
            return Reply(f"[AutoHome {__version__}: yes, still here]")
        if item is Event.LINE_TOO_LONG:
            return Reply(f"line too long (over {self.server.max_line} bytes), ignored")
        line = item.decode("utf-8", errors="replace").strip()
        if line:
            log.debug("console %s: %s", peer, line)
        try:
            return self.server.commands.execute(line)
        except Exception:
            log.exception("console command %r failed", line)
            return Reply(f"command {line!r} failed, see the log for details")


class _TCPServer(socketserver.ThreadingTCPServer):
    """ThreadingTCPServer that remembers open connections so stop() can close them."""

    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], commands: Commands, idle_timeout_s: float, max_line: int
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.commands = commands
        self.idle_timeout_s = idle_timeout_s
        self.max_line = max_line
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Connection)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._open_lock:
            (self._open.add if add else self._open.discard)(sock)

    def hang_up_all(self) -> None:
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
        idle_timeout_s: float = 600.0,
        max_line: int = 4096,
    ) -> None:
        self.host = host
        self.port = port
        self.commands = commands
        self.idle_timeout_s = idle_timeout_s
        self.max_line = max_line
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("console is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        """Bind and start serving; raises OSError if the address cannot be bound."""
        self._server = _TCPServer(
            (self.host, self.port), self.commands, self.idle_timeout_s, self.max_line
        )
        self._thread = threading.Thread(target=self._serve, name="console", daemon=True)
        self._thread.start()
        return self.address

    def _serve(self) -> None:
        # Block on the listening socket and a wake-up socket: no periodic polling.
        assert self._server is not None
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._server.socket, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select():
                        if key.fileobj is self._wake_r:
                            return
                        self._server.handle_request()
        except Exception:
            log.exception("console stopped serving")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, hang up every client, and wait for their threads."""
        if self._server is None or self._thread is None:
            return
        self._wake_w.send(b"x")
        self._thread.join(timeout_s)
        self._server.hang_up_all()
        self._server.server_close()  # joins the connection threads
        self._wake_r.close()
        self._wake_w.close()
        self._server = None
