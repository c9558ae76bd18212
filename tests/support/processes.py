"""AutoHome as a user starts it: `cli.main` in this process, `python main.py` as a real
process, a program on a pseudo-terminal; their output awaited line by line."""

from __future__ import annotations

import io
import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from autohome import cli
from support.clock import WAIT_S
from support.modules import ROOT

MAIN = ROOT / "main.py"
D = TypeVar("D", "InProcessDaemon", "Daemon")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any AUTOHOME_/PUSHOVER_ settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHOME_", "PUSHOVER_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["AUTOHOME_WEB_PORT"] = "off"  # no status page unless a test asks for one (--web-port)
    env.update(extra)
    return env


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


def started(kind: Callable[..., D]) -> Iterator[Callable[..., D]]:
    started: list[D] = []

    def start(workdir: Path, *args: str, env: dict[str, str] | None = None) -> D:
        daemon = kind(workdir, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


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


def free_port() -> int:
    """A port that was free a moment ago (for tests that need a number up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
