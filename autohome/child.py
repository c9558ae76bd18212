"""`python autohome/child.py PORT TOKEN FILE`: one isolated run of one module, in a child
process that AutoHome started and can stop.

The module gets the same `log`, `notify`, `store` and `config` as in a thread: each call
goes over a socket to the parent (one JSON object a line), so the parent stays the one
writer of the log, the outbox and the database. What the module prints, and what its own
subprocesses print, goes to this process's stdout and stderr, which the parent reads into
the module's log. It runs as a script, not as part of the autohome package, and imports
little: it starts at every isolated run.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder (autohome/) comes first on sys.path: a module's
# `import schedule` must not find autohome/schedule.py.
if sys.path and __file__.rpartition("/")[0] in (sys.path[0], sys.path[0].replace("\\", "/")):
    del sys.path[0]

import importlib.machinery  # noqa: E402 - after the sys.path fix above
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import types  # noqa: E402

TYPE_CHECKING = False  # typing itself costs a few milliseconds at every run
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Channel:
    """JSON lines to and from the parent; a call waits for its answer."""

    def __init__(self, sock: socket.socket) -> None:
        self._reader = sock.makefile("rb")
        self._writer = sock.makefile("wb")
        self._lock = threading.Lock()  # the module's threads may log and notify at once

    def send(self, message: dict[str, Any]) -> None:
        """Send without waiting."""
        data = json.dumps(message).encode() + b"\n"
        with self._lock:
            self._writer.write(data)
            self._writer.flush()

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send and wait for the parent's answer."""
        data = json.dumps(message).encode() + b"\n"
        with self._lock:
            self._writer.write(data)
            self._writer.flush()
            line = self._reader.readline()
        if not line:
            raise ConnectionError("AutoHome went away during the run")
        return json.loads(line)


class ToParent(logging.Handler):
    """Sends the module's log records to the parent, which logs them as its own."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(logging.DEBUG)
        self.channel = channel
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record: level, text, traceback and thread."""
        try:
            exc = self._formatter.formatException(record.exc_info) if record.exc_info else None
            self.channel.send({"op": "log", "level": record.levelno, "msg": record.getMessage(),
                               "exc": exc, "thread": record.threadName})
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)


class Store:
    """The module's store, read and written through the parent."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` if the key was never set."""
        answer = self._channel.call({"op": "store_get", "key": str(key)})
        return answer["value"] if answer["found"] else default

    def set(self, key: str, value: Any) -> None:
        """Store a JSON value (str, number, bool, None, list, dict)."""
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"store.set({key!r}, ...) needs a JSON value (str, number, bool, None, "
                             f"list, dict): {exc}") from None
        answer = self._channel.call({"op": "store_set", "key": str(key), "value": value})
        if answer.get("error"):
            raise ValueError(answer["error"])

    def delete(self, key: str) -> None:
        """Forget a key (no error if it was never set)."""
        self._channel.call({"op": "store_delete", "key": str(key)})


def main(argv: Sequence[str]) -> int:
    """Connect, run the module once, say how it went."""
    port, token, path = int(argv[0]), argv[1], argv[2]
    channel = Channel(socket.create_connection(("127.0.0.1", port)))
    hello = channel.call({"op": "hello", "token": token})
    sys.path.insert(0, hello["folder"])
    log = logging.getLogger(f"autohome.modules.{hello['name']}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(ToParent(channel))

    def notify(message: object, **fields: Any) -> bool:
        return bool(channel.call({"op": "notify", "message": str(message), "fields": fields})["result"])

    kit = {"log": log, "notify": notify, "store": Store(channel), "config": hello["settings"]}
    error = None
    try:
        name = f"autohome_modules.{hello['name']}"
        loader = importlib.machinery.SourceFileLoader(name, path)
        module = types.ModuleType(name)
        module.__file__, module.__loader__ = path, loader
        sys.modules[name] = module
        loader.exec_module(module)
        module.run(*[kit[wanted] for wanted in hello["wants"]])
    except BaseException as exc:  # noqa: BLE001 - the module boundary, as in a thread
        error = f"{type(exc).__name__}: {exc}"
        log.exception("run failed")
    _close_output()
    channel.send({"op": "done", "error": error})
    return 0


def _close_output() -> None:
    """Hand the parent the last of the output and end the pipes, so that it has all of it as
    soon as the run is done (the interpreter's own exit takes a while longer)."""
    for stream, descriptor in ((sys.stdout, 1), (sys.stderr, 2)):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # closed by the module
        try:
            os.close(descriptor)
        except OSError:
            pass
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for whatever still prints at exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
