"""`python autohome/running/child.py --fd N FILE` (POSIX) or `--share FILE` (Windows): one isolated run
of one module, in a child process that AutoHome started and can stop.

The module gets the same `log`, `notify`, `store` and `config` as in a thread: each call
goes over a socket to the parent (one JSON object a line), so the parent stays the one
writer of the log, the outbox and the database. The socket is one end of a socket pair
that the parent hands over when it starts this process (an inherited descriptor on POSIX,
`socket.share` through standard input on Windows): nothing else can connect to it, and no
secret appears on the command line. What the module prints, and what its own subprocesses
print, goes to this process's stdout and stderr, which the parent reads into the module's
log. It runs as a script, not as part of the autohome package, and imports little: it
starts at every isolated run.
"""

from __future__ import annotations

import sys

# Run as a script, this file's folder (autohome/running/) comes first on sys.path: a
# module's `import runner` must not find autohome/running/runner.py.
_HERE = __file__.replace("\\", "/").rpartition("/")[0]
if sys.path and _HERE in (sys.path[0], sys.path[0].replace("\\", "/")):
    del sys.path[0]

import importlib.machinery  # noqa: E402 - after the sys.path fix above
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import types  # noqa: E402

TYPE_CHECKING = False  # not even typing is imported: this starts at every isolated run
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

MAX_MESSAGE_BYTES = 1024 * 1024  # the parent drops longer lines; calls are refused here first
MAX_LOG_CHARS = 60000  # of one log message or traceback (the parent keeps 65536), the rest counted
# What the parent's answer names as the error's type, raised here as that type.
_ERRORS = {"TypeError": TypeError, "ValueError": ValueError, "KeyError": KeyError}


def _cut(text: str) -> str:
    if len(text) <= MAX_LOG_CHARS:
        return text
    return f"{text[:MAX_LOG_CHARS]} [... {len(text) - MAX_LOG_CHARS:,} more characters not sent]"


class Channel:
    """JSON lines to and from the parent; a call waits for its answer."""

    def __init__(self, sock: socket.socket) -> None:
        self._reader = sock.makefile("rb")
        self._writer = sock.makefile("wb")
        self._lock = threading.Lock()  # the module's threads may log and notify at once
        self._calls = 0

    def receive(self) -> dict[str, Any]:
        """The parent's next message (the first: what to run)."""
        line = self._reader.readline()
        if not line:
            raise ConnectionError("AutoHome went away during the run")
        return json.loads(line)

    def send(self, message: dict[str, Any]) -> None:
        """Send without waiting."""
        data = json.dumps(message).encode() + b"\n"
        with self._lock:
            self._writer.write(data)
            self._writer.flush()

    def call(self, function: str, **arguments: Any) -> Any:
        """Have the parent do `function` and return its result; its error is raised here."""
        with self._lock:
            self._calls += 1
            number = self._calls
            message = {"op": "call", "id": number, "fn": function, "args": arguments}
            data = json.dumps(message).encode() + b"\n"
            if len(data) > MAX_MESSAGE_BYTES:
                raise ValueError(f"{function}: {len(data):,} bytes is more than an isolated run may "
                                 f"hand AutoHome at once ({MAX_MESSAGE_BYTES:,})")
            self._writer.write(data)
            self._writer.flush()
            answer = self.receive()
        if answer.get("id") != number:
            raise ConnectionError("AutoHome answered another call")
        if "error" in answer:
            raise _ERRORS.get(str(answer.get("type")), RuntimeError)(answer["error"])
        return answer.get("result")


class ToParent(logging.Handler):
    """Sends log records to the parent, which logs them as the module's. On the root logger
    too: a module's `logging.info(...)` is its line, and its `basicConfig()` does nothing."""

    def __init__(self, channel: Channel, name_lines: bool = False) -> None:
        super().__init__(logging.DEBUG)
        self.channel = channel
        self.name_lines = name_lines  # prefix lines with the logger's name (all but the module's own)
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record: level, text, traceback and thread."""
        try:
            message = record.getMessage()
            if self.name_lines and record.name != "root":
                message = f"{record.name}: {message}"
            exc = self._formatter.formatException(record.exc_info) if record.exc_info else None
            self.channel.send({"op": "log", "level": record.levelno, "msg": _cut(message),
                               "exc": None if exc is None else _cut(exc), "thread": record.threadName})
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)


class Store:
    """The module's store, read and written through the parent."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` if the key was never set."""
        found, value = self._channel.call("store_get", key=str(key))
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        """Store a JSON value (str, number, bool, None, list, dict)."""
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"store.set({key!r}, ...) needs a JSON value (str, number, bool, None, "
                             f"list, dict): {exc}") from None
        self._channel.call("store_set", key=str(key), value=value)

    def delete(self, key: str) -> None:
        """Forget a key (no error if it was never set)."""
        self._channel.call("store_delete", key=str(key))


class HelperFinder:
    """Finds `import _helpers` in the modules folder, and nothing else there: the folder is
    never put on sys.path, so a module file named `calendar.py` cannot hide Python's own."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        """A spec for a top-level `_name` found in the folder, as `_name.py` or `_name/`."""
        if path is not None or not name.startswith("_"):
            return None
        package = os.path.join(self.folder, name)
        file = os.path.join(package, "__init__.py")
        if not os.path.isfile(file):
            package, file = "", os.path.join(self.folder, name + ".py")
            if not os.path.isfile(file):
                return None
        loader = importlib.machinery.SourceFileLoader(name, file)
        spec = importlib.machinery.ModuleSpec(name, loader, origin=file, is_package=bool(package))
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [package]
        return spec


def _become_subreaper() -> None:
    """On Linux: processes the module starts that leave this one behind (a double fork, a
    new session) are re-parented here, not to init, so AutoHome finds and stops them."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass  # an unusual libc: stopping still finds what stays below this process


def _limit_memory(limit: int | None) -> str:
    """MEMORY: the address space this process may take, as an rlimit (Linux and macOS; the
    parent says where it cannot be enforced). Returns the limit as the module wrote it, about."""
    if not limit:
        return ""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        return ""
    return f"{limit / 1024 / 1024:g}M"


def _connect(argv: Sequence[str]) -> socket.socket:
    """This process's end of the socket pair, as the parent handed it over."""
    if argv[0] == "--fd":
        descriptor = int(argv[1])
        os.set_inheritable(descriptor, False)  # the module's own subprocesses do not get it
        return socket.socket(fileno=descriptor)
    if sys.platform != "win32":
        raise SystemExit(f"unknown channel {argv[0]!r}: --share is for Windows")
    shared = sys.stdin.buffer.read()  # --share: the bytes of socket.share(), then end of input
    sys.stdin.close()
    return socket.fromshare(shared)


def main(argv: Sequence[str]) -> int:
    """Take the channel, run the module once, say how it went."""
    channel = Channel(_connect(argv))
    path = argv[-1]
    hello = channel.receive()
    _become_subreaper()
    memory = _limit_memory(hello.get("memory"))
    sys.meta_path.append(HelperFinder(hello["folder"]))
    # The module's logger lives in a tree of its own, as in AutoHome: nothing the module
    # does to `logging` reaches it.
    tree = logging.Manager(logging.RootLogger(logging.WARNING))
    log = tree.getLogger(f"autohome.modules.{hello['name']}")
    log.setLevel(logging.DEBUG)
    log.addHandler(ToParent(channel))
    logging.root.addHandler(ToParent(channel, name_lines=True))
    logging.root.setLevel(logging.INFO)

    def notify(message: object, title: str | None = None, priority: int = 0, url: str | None = None,
               url_title: str | None = None, sound: str | None = None, retry: int | None = None,
               expire: int | None = None, html: bool = False, monospace: bool = False, ttl: int | None = None,
               device: str | None = None, attachment: object = None, to: object = None) -> bool:
        fields = {"title": title, "priority": priority, "url": url, "url_title": url_title,
                  "sound": sound, "retry": retry, "expire": expire, "html": html, "monospace": monospace,
                  "ttl": ttl, "device": device, "to": to}
        if isinstance(attachment, bytes | bytearray):  # over the JSON channel as base64
            import base64

            fields["attachment_base64"] = base64.b64encode(attachment).decode("ascii")
        elif attachment is not None:
            fields["attachment"] = str(attachment)  # a path: the parent reads it
        return bool(channel.call("notify", message=str(message), **fields))

    kit = {"log": log, "notify": notify, "store": Store(channel), "config": hello.get("config", {})}
    error = None
    try:
        name = f"autohome_modules.{hello['name']}"
        loader = importlib.machinery.SourceFileLoader(name, path)
        module = types.ModuleType(name)
        module.__file__, module.__loader__ = path, loader
        sys.modules[name] = module
        loader.exec_module(module)
        module.run(*[kit[wanted] for wanted in hello["wants"]])
    except MemoryError:
        error = f"out of memory (MEMORY = {memory})" if memory else "out of memory"
        log.exception("run failed: %s", error)
    except BaseException as exc:  # noqa: BLE001 - the module boundary, as in a thread
        error = _cut(f"{type(exc).__name__}: {exc}")
        trace = exc.__traceback__  # from the module on: this frame is no help to its author
        log.error("run failed", exc_info=(type(exc), exc, trace.tb_next if trace else None))
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
