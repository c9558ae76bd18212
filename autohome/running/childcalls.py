"""What an isolated child says to AutoHome, one JSON object a line: log records, calls
(notify and the store) and its last word. Every message is checked: whatever the child
sends (malformed, unknown, oversized, a call with wrong arguments) is that run's problem,
logged under the module or answered with an error that the child raises where the call was
made; nothing it sends stops its supervision."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from autohome.catalog.loader import ModuleKit, ModuleSpec

MAX_MESSAGE_BYTES = 1024 * 1024  # a longer line from the child is dropped (child.py refuses first)


class _Refused(Exception):
    """A call from the child that cannot be carried out; the child raises it as `kind`."""

    def __init__(self, message: str, kind: str = "RuntimeError") -> None:
        super().__init__(message)
        self.kind = kind


class ChildMessages:
    """The messages of one isolated run, fed as they arrive; `send` answers the child."""

    def __init__(self, spec: ModuleSpec, kit: ModuleKit, send: Callable[[dict[str, Any]], None]) -> None:
        self.spec = spec
        self.kit = kit
        self._send = send
        self._pending = bytearray()
        self._dropping = False  # inside a line longer than MAX_MESSAGE_BYTES
        self.error: str | None = None  # the run's error, once the child said it is done

    def feed(self, chunk: bytes) -> bool:
        """Take what the child sent; return True once it said it is done (see `error`)."""
        pending = self._pending
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end])
            del pending[:end + 1]
            if self._dropping:
                self._dropping = False
                continue
            if self._handle(line):
                return True
        if len(pending) > MAX_MESSAGE_BYTES:
            if not self._dropping:
                self.kit.log.warning("the child process sent a message of more than %d bytes; it was dropped",
                                     MAX_MESSAGE_BYTES)
            pending.clear()
            self._dropping = True
        return False

    def _handle(self, line: bytes) -> bool:
        """One message; True for the child's last word."""
        try:
            message = json.loads(line)
        except ValueError:
            self.kit.log.warning("the child process sent something that is not a message; ignored: %r",
                                 line[:200])
            return False
        if not isinstance(message, dict):
            self.kit.log.warning("the child process sent %r, which is not a message; ignored", line[:200])
            return False
        op = message.get("op")
        if op == "done":
            error = message.get("error")
            self.error = None if error is None else str(error)[:10_000]
            return True
        if op == "log":
            self._log(message)
        elif op == "call":
            self._answer(message)
        else:
            self.kit.log.warning("the child process sent %r, which AutoHome does not know; ignored",
                                 str(op)[:100])
            if "id" in message:
                self._send({"id": message["id"], "error": f"AutoHome does not know {str(op)[:100]!r}"})
        return False

    def _answer(self, message: dict[str, Any]) -> None:
        number = message.get("id")
        try:
            result = self._call(message.get("fn"), message.get("args"))
        except _Refused as exc:
            self._send({"id": number, "error": str(exc), "type": exc.kind})
        except Exception as exc:  # noqa: BLE001 - the call's error is the child's, raised where it was made
            self._send({"id": number, "error": f"{type(exc).__name__}: {exc}", "type": "RuntimeError"})
        else:
            self._send({"id": number, "result": result})

    def _call(self, function: object, arguments: object) -> Any:
        if not isinstance(arguments, dict):
            raise _Refused(f"{function}() was called without its arguments", "TypeError")
        try:
            if function == "notify":
                fields = dict(arguments)
                if isinstance(fields.get("attachment_base64"), str):
                    import base64

                    fields["attachment"] = base64.b64decode(fields.pop("attachment_base64"), validate=True)
                return bool(self.kit.notify(fields.pop("message", None), **fields))
            if function == "store_get":
                missing = object()
                value = self.kit.store.get(_key(arguments), missing)
                return [value is not missing, None if value is missing else value]
            if function == "store_set":
                if "value" not in arguments:
                    raise _Refused("store.set() needs a key and a value", "TypeError")
                self.kit.store.set(_key(arguments), arguments["value"])
                return None
            if function == "store_delete":
                self.kit.store.delete(_key(arguments))
                return None
        except TypeError as exc:  # notify(colour="red"): as Python says it in a thread
            raise _Refused(str(exc), "TypeError") from None
        except ValueError as exc:
            raise _Refused(str(exc), "ValueError") from None
        raise _Refused(f"AutoHome offers no {str(function)[:100]!r} to isolated runs")

    def _log(self, message: dict[str, Any]) -> None:
        logger = self.kit.log
        level = message.get("level", logging.INFO)
        text = str(message.get("msg", ""))
        if not isinstance(level, int) or isinstance(level, bool) or not 0 < level <= 100:
            text, level = f"(level {str(level)[:20]!r} is not a logging level) {text}", logging.WARNING
        if not logger.isEnabledFor(level):
            return
        record = logger.makeRecord(logger.name, level, str(self.spec.path), 0, text, (), None)
        exc = message.get("exc")
        record.exc_text = None if exc is None else str(exc)
        record.threadName = f"module:{self.spec.name}"
        logger.handle(record)



def _key(arguments: dict[str, Any]) -> str:
    if "key" not in arguments:
        raise _Refused("the store needs a key", "TypeError")
    return str(arguments["key"])
