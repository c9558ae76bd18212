"""Isolated runs: one run of one module in a child Python process (child.py), which
its run thread supervises and can stop.

The channel between them is a socket pair made here: the child's end is handed over when
it starts (an inherited descriptor on POSIX, `socket.share` through its standard input on
Windows), so no other process can connect, and no secret is on a command line. Whatever
the child sends is checked: a malformed or unknown call is answered with an error that the
child raises where the call was made, and nothing it sends ends the supervision.

Stopping it stops what it started too (processtree.py): SIGTERM, then SIGKILL after the
grace period.
"""

from __future__ import annotations

import codecs
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

from autohome.catalog.loader import ModuleKit, ModuleSpec
from autohome.logs.tree import get_logger
from autohome.running.capture import RunOutput
from autohome.running.childcalls import ChildMessages
from autohome.running.processtree import KILL, PipeStop, ProcessTree, read_chunks
from autohome.storage.state import Outcome

log = get_logger("autohome.main")

_CHILD = str(Path(__file__).resolve().with_name("child.py"))  # run as a script: see child.py
# After the module returned, what processes it left behind still print is read this long.
OUTPUT_DRAIN_S = 0.2
READ_BYTES = 65536
# AutoHome's own secrets: never in an isolated child's environment or config.
SECRET_SETTINGS = ("AUTOHOME_CONSOLE_PASSWORD", "PUSHOVER_TOKEN", "PUSHOVER_USER")


def child_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """The settings an isolated module's `config` holds: all but AutoHome's own secrets."""
    return {key: value for key, value in settings.items() if key not in SECRET_SETTINGS}


class IsolatedRun:
    """A child process running one module once; `run()` on the run thread, `stop()` from
    anywhere."""

    def __init__(self, spec: ModuleSpec, kit: ModuleKit, output: RunOutput,
                 settings: Mapping[str, str], grace_s: float) -> None:
        self.spec = spec
        self.kit = kit
        self.output = output
        self.settings = child_settings(settings)
        self.grace_s = grace_s
        self.stopped_as: tuple[Outcome, str] | None = None  # (outcome, error) once stop() was called
        self._process: subprocess.Popen[bytes] | None = None
        self._ours: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._output_done = PipeStop()  # stop reading the child's pipes
        self._tree: ProcessTree | None = None  # the child and what it started, for stopping
        self._lock = threading.Lock()

    def run(self) -> str | None:
        """Start the child, serve its calls until it is done; return its error (None: ok).
        Raises OSError if no child can be started; once one is, whatever goes wrong here, it
        is stopped before this returns."""
        readers: list[threading.Thread] = []
        with self._lock:
            if self.stopped_as is not None:
                return self.stopped_as[1]
            self._ours, theirs = socket.socketpair()
            try:
                self._process = self._start(theirs)
            except BaseException:
                self._close()
                raise
            finally:
                theirs.close()
            self._tree = ProcessTree(self._process)
        try:
            readers = [self._read_output(self._process.stdout, logging.INFO),
                       self._read_output(self._process.stderr, logging.WARNING)]
            threading.Thread(target=self._wake_when_exited, name=f"module:{self.spec.name}:wait",
                             daemon=True).start()
            self._send({"name": self.spec.name, "wants": list(self.spec.wants),
                        "folder": str(self.spec.path.parent), "memory": self.spec.memory,
                        **({"config": self.settings} if "config" in self.spec.wants else {})})
            error = self._serve()
        except Exception as exc:  # the one catch of the supervision: the child never outlives it
            log.exception("module %s: supervising its child process failed", self.spec.name)
            self.stop(Outcome.ERROR,
                      f"internal error supervising the child process: {type(exc).__name__}: {exc}")
            error = None
        finally:
            self._end(readers)
        if self.stopped_as is not None:
            return self.stopped_as[1]
        return error

    def stop(self, outcome: Outcome, error: str) -> None:
        """Ask the child and what it started to end now (SIGTERM); the run thread kills them
        after the grace period. The first call decides how the run is recorded."""
        with self._lock:
            if self.stopped_as is not None:
                return
            self.stopped_as = (outcome, error)
            process, tree = self._process, self._tree
        if process is not None and tree is not None and process.poll() is None:
            tree.signal(signal.SIGTERM)
        self._wake()

    # --- starting ------------------------------------------------------------------

    def _start(self, theirs: socket.socket) -> subprocess.Popen[bytes]:
        env = {key: value for key, value in os.environ.items() if key not in SECRET_SETTINGS}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the child starts at every run: let it use the cache
        options: dict[str, Any] = {}
        if sys.platform == "win32":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
            argv = ["--share", str(self.spec.path)]
            options["stdin"] = subprocess.PIPE
        else:
            options["start_new_session"] = True  # its own process group: stopped with its children
            options["pass_fds"] = (theirs.fileno(),)
            argv = ["--fd", str(theirs.fileno()), str(self.spec.path)]
            options["stdin"] = subprocess.DEVNULL
        process = subprocess.Popen([sys.executable, _CHILD, *argv], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, cwd=str(self.spec.path.parent), env=env, **options)
        if sys.platform == "win32":
            assert process.stdin is not None
            with process.stdin:
                process.stdin.write(theirs.share(process.pid))
        return process

    def _send(self, message: dict[str, Any]) -> None:
        assert self._ours is not None
        try:
            self._ours.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass  # the child is gone: its end of the run is seen by the reader

    # --- the child's output ----------------------------------------------------------

    def _read_output(self, stream: IO[bytes] | None, level: int) -> threading.Thread:
        """A thread that hands what the child writes to the run's output, in chunks (a line
        without an end costs no more than its first MAX_LINE characters)."""

        def read() -> None:
            assert stream is not None
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            with stream:
                for chunk in read_chunks(stream, self._output_done, READ_BYTES):
                    self.output.write(decoder.decode(chunk), level)
                self.output.write(decoder.decode(b"", final=True), level)

        thread = threading.Thread(target=read, name=f"module:{self.spec.name}:output", daemon=True)
        thread.start()
        return thread

    # --- serving the child's calls ------------------------------------------------------

    def _wake_when_exited(self) -> None:
        assert self._process is not None
        self._process.wait()
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # the run is over and closed its sockets

    def _serve(self) -> str | None:
        """Answer the child's calls until it says it is done, exits, or is stopped."""
        ours = self._ours
        assert ours is not None and self._process is not None
        ours.setblocking(False)
        messages = ChildMessages(self.spec, self.kit, self._send)
        with selectors.DefaultSelector() as selector:
            selector.register(ours, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while self.stopped_as is None:
                exited = self._process.poll() is not None
                try:
                    chunk = ours.recv(READ_BYTES)
                except (BlockingIOError, InterruptedError):
                    if exited:  # everything it sent is read (a process it forked may hold the socket)
                        break
                    selector.select()
                    _drain(self._wake_r)
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                if messages.feed(chunk):
                    return messages.error
        return self._ended_without_word()

    def _ended_without_word(self) -> str:
        process = self._process
        code = None
        if process is not None and self.stopped_as is None:
            try:
                code = process.wait(self.grace_s)
            except subprocess.TimeoutExpired:  # it closed its end but lives on: it is ended here
                self._kill()
                code = process.wait()
        return f"the child process ended without finishing the run (exit code {code})"

    # --- ending -------------------------------------------------------------------------

    def _end(self, readers: list[threading.Thread]) -> None:
        """Stop the child if it was stopped (after the grace period), let its output be read
        for a moment more, then close everything of this run."""
        process = self._process
        if process is not None:
            if self.stopped_as is not None:
                self._wait_or_kill(process)
            else:  # it exits by itself; killed if it lingers past the grace period
                threading.Thread(target=self._wait_or_kill, args=(process,), daemon=True,
                                 name=f"module:{self.spec.name}:exit").start()
        for reader in readers:  # the child ends its pipes before it says it is done
            reader.join(OUTPUT_DRAIN_S)
        self._output_done.set()  # a process it left behind holds them open: read no more
        for reader in readers:
            reader.join(OUTPUT_DRAIN_S)
        self._close(readers_done=not any(reader.is_alive() for reader in readers))

    def _close(self, readers_done: bool = True) -> None:
        for sock in (self._ours, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if readers_done:  # (a reader still waiting on it ends at its pipe's end, and leaves it)
            self._output_done.close()

    def _wait_or_kill(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            if self.stopped_as is None:
                log.warning("module %s: its child process did not exit after the run; killed",
                            self.spec.name)
        if self.stopped_as is not None or process.poll() is None:
            self._kill()
        process.wait()

    def _kill(self) -> None:
        if self._tree is not None:
            self._tree.signal(KILL)


def _drain(sock: socket.socket) -> None:
    try:
        sock.setblocking(False)
        while sock.recv(4096):
            pass
    except OSError:
        pass  # nothing more to read
