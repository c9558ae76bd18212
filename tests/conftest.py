"""Shared fixtures: AutoHome built in-process (build(), cli.main), real daemons in subprocesses
where a process is what is tested, real sockets, a real Pushover-like HTTP server."""

from __future__ import annotations

import io
import json
import logging
import os
import queue
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs

import pytest

from autohome import cli
from autohome.app import Main, build
from autohome.catalog.loader import BrokenModule, ModuleSpec
from autohome.catalog.registry import ModuleRegistry
from autohome.catalog.schedule import IntervalSchedule
from autohome.clock import FakeClock
from autohome.config import Config
from autohome.logs.setup import LogSetup, setup_logging
from autohome.logs.tree import get_logger, tree_root

ROOT = Path(__file__).resolve().parent.parent
D = TypeVar("D", "InProcessDaemon", "Daemon")
MAIN = ROOT / "main.py"
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)
WAIT_S = 15.0  # safety net for waits on events; tests never sleep


def loaded_registry(folder: Path) -> ModuleRegistry:
    """Every module file of `folder` loaded, as the daemon's first load does."""
    registry = ModuleRegistry(folder)
    registry.load()
    return registry


def write_module(folder: Path, name: str, source: str) -> Path:
    """Write a user module file from an indented source string."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any AUTOHOME_/PUSHOVER_ settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHOME_", "PUSHOVER_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["AUTOHOME_WEB_PORT"] = "off"  # no status page unless a test asks for one (--web-port)
    env.update(extra)
    return env


def spec(name: str, run: Callable[..., object], interval_s: float = 60, description: str = "",
         **changes: object) -> ModuleSpec:
    """A module made in the test, without a file."""
    schedule = IntervalSchedule(timedelta(seconds=interval_s))
    return ModuleSpec(name, Path(f"modules/{name}.py"), schedule, run, description, **changes)  # type: ignore[arg-type]


def make_main(clock: FakeClock, *modules: ModuleSpec | BrokenModule, max_threads: int = 8,
              grace_s: float = 5, settle: bool = False, **settings: object) -> Main:
    """The daemon as build() wires it, console off unless asked for, on an in-memory database."""
    config = Config(**{"max_threads": max_threads, "console_enabled": False, "web_enabled": False,
                       "shutdown_grace": timedelta(seconds=grace_s), **settings})  # type: ignore[arg-type]
    return build(config, clock, list(modules), settle_each_tick=settle)


class LogSeen(logging.Handler):
    """Sets `event` when a record containing `text` is logged (tests wait on it)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.records.append(record)
            self.event.set()

    def wait(self, timeout_s: float = WAIT_S) -> bool:
        return self.event.wait(timeout_s)


@contextmanager
def log_seen(text: str, logger: str = "autohome") -> Iterator[LogSeen]:
    """Watch a logger (and those below it) for a line containing `text`."""
    handler = LogSeen(text)
    target = get_logger(logger)
    level = target.level
    target.setLevel(logging.DEBUG)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


class _ToCaplog(logging.Handler):
    """Hands AutoHome's records (its own logger tree, apart from logging's) to pytest's caplog."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        super().__init__(logging.NOTSET)
        self.caplog = caplog

    def emit(self, record: logging.LogRecord) -> None:
        self.caplog.handler.handle(record)


@pytest.fixture(autouse=True)
def _caplog_sees_autohome(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that asks for caplog sees AutoHome's lines, as it would the logging module's."""
    if "caplog" not in request.fixturenames:
        yield
        return
    bridge = _ToCaplog(request.getfixturevalue("caplog"))
    root = tree_root()
    level = root.level
    root.setLevel(logging.DEBUG)  # caplog's handler has the level (caplog.at_level sets it)
    root.addHandler(bridge)
    try:
        yield
    finally:
        root.removeHandler(bridge)
        root.setLevel(level)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@dataclass
class Result:
    """What a finished in-process run of `autohome` left: exit code, stdout, stderr."""

    returncode: int
    stdout: str
    stderr: str


def run_autohome(workdir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None,
                 timeout_s: float = 30) -> Result:
    """`python main.py ARGS` in workdir, in this process through cli.main, feeding stdin.

    A whole test-mode session takes tens of milliseconds this way instead of a process start;
    tests of what only a process shows (signals, kill -9, a terminal) use `run_process`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = cli.main(list(args), environ=env if env is not None else clean_env(), stdin=io.StringIO(stdin),
                    stderr=stderr, stdout=stdout, workdir=workdir)
    return Result(code, stdout.getvalue(), stderr.getvalue())


def run_process(
    workdir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `python main.py ARGS` in workdir as a real process to completion, feeding stdin."""
    return subprocess.run(
        [sys.executable, str(MAIN), *args],
        cwd=workdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env if env is not None else clean_env(),
    )


class _Lines(io.TextIOBase):
    """A text stream whose lines go onto a queue as they are written (an in-process stderr)."""

    def __init__(self, lines: queue.Queue[str | None]) -> None:
        self._lines = lines
        self._partial = ""

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._lines.put(line)
        return len(text)

    def isatty(self) -> bool:
        return False


class _AwaitsLines:
    """wait_for() over the lines a daemon writes to stderr (self._queue, self.lines)."""

    lines: list[str]
    _cursor: int
    _port: int | None
    _queue: queue.Queue[str | None]

    def wait_for(self, pattern: str, timeout_s: float = WAIT_S) -> re.Match[str]:
        """Block until a stderr line after the previous match matches the regex."""
        regex = re.compile(pattern)
        while self._cursor < len(self.lines):
            line = self.lines[self._cursor]
            self._cursor += 1
            if found := regex.search(line):
                return found
        while True:
            try:
                line = self._queue.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r}:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"exited before {pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            self._cursor = len(self.lines)
            if found := regex.search(line):
                return found

    def wait_for_all(self, *patterns: str) -> None:
        """Block until every regex has matched some stderr line, in whatever order."""
        for pattern in patterns:
            if not any(re.search(pattern, line) for line in self.lines):
                self._cursor = len(self.lines)
                self.wait_for(pattern)

    @property
    def console_port(self) -> int:
        """The console's port, from its line, whether or not a wait_for() went past it."""
        if self._port is None:
            pattern = r"console listening on [\d.]+:(\d+)"
            seen = [found for line in self.lines if (found := re.search(pattern, line))]
            self._port = int((seen[0] if seen else self.wait_for(pattern)).group(1))
        return self._port



class InProcessDaemon(_AwaitsLines):
    """`python main.py ARGS` running on a thread of this process: stdin is a real pipe,
    stderr lines can be awaited, as with Daemon."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        read_fd, write_fd = os.pipe()
        self._stdin_r = os.fdopen(read_fd, "r")
        self._stdin_w = os.fdopen(write_fd, "w")
        self.lines: list[str] = []
        self._port: int | None = None
        self._cursor = 0
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.returncode: int | None = None

        def run() -> None:
            try:
                self.returncode = cli.main(list(args), environ=env if env is not None else clean_env(),
                                           stdin=self._stdin_r, stderr=_Lines(self._queue),
                                           stdout=io.StringIO(), workdir=workdir)
            finally:
                self._queue.put(None)

        self._thread = threading.Thread(target=run, name="in-process-daemon", daemon=True)
        self._thread.start()

    def send(self, text: str) -> None:
        self._stdin_w.write(text)
        self._stdin_w.flush()

    def close_stdin(self) -> None:
        if not self._stdin_w.closed:
            self._stdin_w.close()

    def wait(self, timeout_s: float = WAIT_S) -> int:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the daemon did not stop:\n" + "\n".join(self.lines)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """Stop it (end of input) if a test left it running."""
        self.close_stdin()
        self._thread.join(WAIT_S)
        self._stdin_r.close()


class Daemon(_AwaitsLines):
    """`python main.py` running in the background; its stderr lines can be awaited."""

    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.process = subprocess.Popen(
            [sys.executable, str(MAIN), *args],
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else clean_env(),
        )
        self.lines: list[str] = []
        self._port: int | None = None
        self._cursor = 0  # wait_for looks at lines after its previous match
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def wait(self, timeout_s: float = WAIT_S) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(timeout_s)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT_S)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _started(kind: Callable[..., D]) -> Iterator[Callable[..., D]]:
    started: list[D] = []

    def start(workdir: Path, *args: str, env: dict[str, str] | None = None) -> D:
        daemon = kind(workdir, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def daemon_factory() -> Iterator[Callable[..., InProcessDaemon]]:
    """Start `main.py ARGS` in-process on a thread; stopped at the end of the test."""
    yield from _started(InProcessDaemon)


@pytest.fixture
def process_factory() -> Iterator[Callable[..., Daemon]]:
    """Start `python main.py ARGS` as a real process (signals, kill -9); killed at the end."""
    yield from _started(Daemon)


class Terminal:
    """A program on a pseudo-terminal, whose screen output can be awaited."""

    def __init__(self, *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        import pty  # POSIX only: import it where a test asks for a terminal

        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                        cwd=cwd, env=env)
        os.close(slave)
        self.output = b""
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                chunk = b""
            with self.changed:
                if not chunk:
                    self.changed.notify_all()
                    return
                self.output += chunk
                self.changed.notify_all()

    def expect(self, text: bytes, count: int = 1) -> bytes:
        with self.changed:
            ok = self.changed.wait_for(lambda: self.output.count(text) >= count, WAIT_S)
            assert ok, f"never saw {text!r} x{count}; screen:\n{self.output.decode(errors='replace')}"
            return self.output

    def await_prompt(self, prompt: bytes) -> None:
        """Wait until the screen ends with the prompt: the program is waiting for keys."""
        with self.changed:
            ok = self.changed.wait_for(lambda: self.output.endswith(prompt), WAIT_S)
            assert ok, f"never came back to {prompt!r}; screen:\n{self.output.decode(errors='replace')}"

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def press(self, keys: bytes) -> None:
        """Send keys as a keyboard does: the up-arrow is ESC [ A, Tab is 0x09."""
        os.write(self.master, keys)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT_S)
        os.close(self.master)


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


@pytest.fixture
def console_factory(clock: FakeClock) -> Iterator[Callable[..., Main]]:
    """Start daemons with a real console on a free port; shut down at the end of the test."""
    started: list[Main] = []

    def start(*modules: ModuleSpec | BrokenModule, logs: LogSetup | None = None,
              limits: dict[str, float] | None = None, **settings: object) -> Main:
        config = Config(**{"console_port": 0, "tick": timedelta(seconds=30), "web_enabled": False,  # type: ignore[arg-type]
                           **settings})
        main = build(config, clock, list(modules), logs=logs)
        if limits and main.console is not None:
            main.console.limits = main.console.limits._replace(**limits)
        main.start()
        started.append(main)
        return main

    yield start
    for main in started:
        main.shutdown()


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogSetup]:
    """AutoHome's logging, as the daemon sets it up, into the test's own logs/ folder."""
    setup = setup_logging(tmp_path / "logs", "DEBUG")
    yield setup
    setup.close()


def settle(main: Main, logs: LogSetup | None = None) -> None:
    """Wait until no run is going or waiting, and every finished one is stored (and logged)."""
    assert main.runner.wait_for(lambda now: not now.running and not now.queued, WAIT_S)
    main.states.flush()
    if logs is not None:
        logs.flush()


def sunny(log, notify):
    log.info("sunny")


def no_network(log, notify):
    raise RuntimeError("no network <b>today</b>")


def scripted(log, notify):
    log.info("<script>alert(1)</script>")


@pytest.fixture
def web_main(console_factory: Callable[..., Main], logs: LogSetup) -> Main:
    """A daemon with its console and status page on free ports: a module that works, one that
    fails, and one whose log line is a script."""
    return console_factory(spec("weather", sunny, 300, "Fetch the weather."),
                           spec("failing", no_network, 3600), spec("scripted", scripted, 3600),
                           logs=logs, web_enabled=True, web_port=0)


def console_port(main: Main) -> int:
    """The port a started daemon's console listens on."""
    assert main.console is not None
    return main.console.address[1]


@dataclass
class PushoverRequest:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Answer:
    status: int = 200
    body: dict | str = field(default_factory=lambda: {"status": 1, "request": "req-ok"})
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # wait on this before answering (a slow API)


class FakePushover:
    """An HTTP server on 127.0.0.1 that answers like Pushover's Message API.

    Answers are scripted per test; with no script, every message succeeds.
    """

    LIMIT_HEADERS = {
        "X-Limit-App-Limit": "10000",
        "X-Limit-App-Remaining": "9876",
        "X-Limit-App-Reset": "1767225600",
    }

    def __init__(self, port: int = 0) -> None:
        self.requests: list[PushoverRequest] = []
        self.answers: list[Answer] = []
        self.received = threading.Condition()
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                # Bundled modules' tests use the same scripted server as a plain website.
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                with fake.received:
                    fake.requests.append(PushoverRequest(self.path, form, dict(self.headers)))
                    answer = fake.answers.pop(0) if fake.answers else Answer()
                    fake.received.notify_all()
                if answer.hold is not None:
                    answer.hold.wait(WAIT_S)
                body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                payload = body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in {**fake.LIMIT_HEADERS, **answer.headers}.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/1/messages.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def refuse(self, status: int, *errors: str, field_name: str = "user") -> Answer:
        """A 4xx answer shaped like Pushover's."""
        return Answer(status, {field_name: "invalid", "errors": list(errors), "status": 0,
                               "request": "req-refused"})

    def wait_for_requests(self, count: int) -> list[PushoverRequest]:
        with self.received:
            assert self.received.wait_for(lambda: len(self.requests) >= count, WAIT_S), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pushover() -> Iterator[FakePushover]:
    server = FakePushover()
    yield server
    server.close()


def free_port() -> int:
    """A port that was free a moment ago (for tests that need a number up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
