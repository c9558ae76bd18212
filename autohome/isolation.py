"""Isolated runs: one run of one module in a child Python process (autohome/child.py), which
its run thread supervises and can stop: SIGTERM to the child's whole process group, then
SIGKILL after the grace period (on Windows: terminate, then kill)."""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from autohome.capture import RunOutput
from autohome.loader import ModuleKit, ModuleSpec
from autohome.logtree import get_logger

log = get_logger("autohome.main")

_CHILD = str(Path(__file__).resolve().with_name("child.py"))  # run as a script: see child.py


class IsolatedRun:
    """A child process running one module once; `run()` on the run thread, `stop()` from
    anywhere."""

    def __init__(self, spec: ModuleSpec, kit: ModuleKit, output: RunOutput,
                 settings: Mapping[str, str], grace_s: float) -> None:
        self.spec = spec
        self.kit = kit
        self.output = output
        self.settings = dict(settings)
        self.grace_s = grace_s
        self.stopped_as: tuple[str, str] | None = None  # (outcome, error) once stop() was called
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()

    def run(self) -> str | None:
        """Start the child, serve its calls until it is done; return its error (None: ok)."""
        listener = socket.create_server(("127.0.0.1", 0))
        token = os.urandom(16).hex()
        try:
            with self._lock:
                if self.stopped_as is not None:
                    return self.stopped_as[1]
                self._process = self._start(listener.getsockname()[1], token)
            readers = [self._read_output(self._process.stdout, logging.INFO),
                       self._read_output(self._process.stderr, logging.WARNING)]
            threading.Thread(target=self._wake_when_exited, name=f"module:{self.spec.name}:wait",
                             daemon=True).start()
            error = self._serve(listener, token)
            for reader in readers:  # the child ends its pipes before it says it is done
                reader.join(self.grace_s if self.stopped_as is None else 0.2)
            self._end_process()
        finally:
            listener.close()
            self._wake_r.close()
            self._wake_w.close()
        if self.stopped_as is not None:
            return self.stopped_as[1]
        return error

    def stop(self, outcome: str, error: str) -> None:
        """Ask the child to end now (SIGTERM); the run thread kills it after the grace period.
        The first call decides how the run is recorded."""
        with self._lock:
            if self.stopped_as is not None:
                return
            self.stopped_as = (outcome, error)
            process, connection = self._process, self._connection
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # ends the run thread's read
            except OSError:
                pass  # closed already
        self._wake()

    def _start(self, port: int, token: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the child starts at every run: let it use the cache
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            options["start_new_session"] = True  # its own process group: stopped with its children
        return subprocess.Popen(
            [sys.executable, _CHILD, str(port), token, str(self.spec.path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=str(self.spec.path.parent), env=env, **options)

    def _read_output(self, stream: IO[bytes] | None, level: int) -> threading.Thread:
        def read() -> None:
            assert stream is not None
            with stream:
                for raw in iter(stream.readline, b""):
                    self.output.write(raw.decode("utf-8", "replace"), level)

        thread = threading.Thread(target=read, name=f"module:{self.spec.name}:output", daemon=True)
        thread.start()
        return thread

    def _wake_when_exited(self) -> None:
        assert self._process is not None
        self._process.wait()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # the run is over and closed its sockets

    def _serve(self, listener: socket.socket, token: str) -> str | None:
        """Answer the child's calls until it says it is done, exits, or is stopped."""
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in selector.select()]
        if listener not in ready:  # exited or stopped before it connected
            return self._ended_without_word()
        connection, _ = listener.accept()
        with self._lock:
            self._connection = connection
            if self.stopped_as is not None:
                connection.shutdown(socket.SHUT_RDWR)
        try:
            with connection.makefile("rb") as reader:
                for line in reader:  # ends when the child exits, or stop() shuts the socket down
                    message = json.loads(line)
                    if message.get("op") == "done":
                        return message.get("error")
                    answer = self._answer(message, token)
                    if answer is not None:
                        connection.sendall(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass  # stopped while a call was answered
        finally:
            connection.close()
        return self._ended_without_word()

    def _ended_without_word(self) -> str:
        process = self._process
        code = None
        if process is not None and self.stopped_as is None:
            try:
                code = process.wait(self.grace_s)
            except subprocess.TimeoutExpired:  # it closed its end but lives on: it is ended here
                _signal_group(process, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
                code = process.wait()
        return f"the child process ended without finishing the run (exit code {code})"

    def _answer(self, message: dict[str, Any], token: str) -> dict[str, Any] | None:
        op = message.get("op")
        if op == "hello":
            import hmac  # hashlib: loaded only where isolated runs are used

            if not hmac.compare_digest(str(message.get("token", "")), token):
                raise ConnectionError("a process that is not the child connected")
            return {"name": self.spec.name, "wants": list(self.spec.wants),
                    "settings": self.settings, "folder": str(self.spec.path.parent)}
        if op == "log":
            self._log(message)
            return None
        if op == "notify":
            fields = message.get("fields") or {}
            return {"result": bool(self.kit.notify(message.get("message"), **fields))}
        if op == "store_get":
            missing = object()
            value = self.kit.store.get(message["key"], missing)
            return {"found": value is not missing, "value": None if value is missing else value}
        if op == "store_set":
            try:
                self.kit.store.set(message["key"], message["value"])
            except ValueError as exc:
                return {"error": str(exc)}
            return {}
        if op == "store_delete":
            self.kit.store.delete(message["key"])
            return {}
        raise ConnectionError(f"the child sent {op!r}, which AutoHome does not know")

    def _log(self, message: dict[str, Any]) -> None:
        logger = self.kit.log
        level = int(message.get("level", logging.INFO))
        if not logger.isEnabledFor(level):
            return
        record = logger.makeRecord(logger.name, level, str(self.spec.path), 0, str(message.get("msg", "")),
                                   None, None)
        record.exc_text = message.get("exc")
        record.threadName = f"module:{self.spec.name}"
        logger.handle(record)

    def _end_process(self) -> None:
        """A stopped child is killed with its children after the grace period. A child that
        finished its run exits by itself: it is waited for on a thread of its own, so the run
        ends when the module's work does, and killed if it lingers past the grace period."""
        process = self._process
        if process is None:
            return
        if self.stopped_as is not None:
            self._wait_or_kill(process)
        else:
            threading.Thread(target=self._wait_or_kill, args=(process,), daemon=True,
                             name=f"module:{self.spec.name}:exit").start()

    def _wait_or_kill(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            if self.stopped_as is None:
                log.warning("module %s: its child process did not exit after the run; killed",
                            self.spec.name)
        if self.stopped_as is not None or process.poll() is None:
            _signal_group(process, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send the signal to the child's whole process group (POSIX), or end the child (Windows)."""
    try:
        if sys.platform == "win32":
            process.kill() if signum != signal.SIGTERM else process.terminate()
        else:
            os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
