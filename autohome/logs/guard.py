"""What modules do to the `logging` module: the router that makes their `logging` calls
their own lines, and the guard that puts AutoHome's part back when a module changes it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from autohome.logs.tree import MODULE_LOGGER, get_logger


def _is_terminal_stream(stream: object) -> bool:
    """Whether a handler writing to `stream` writes to this process's stdout or stderr (which,
    on a module's thread, AutoHome captures into the module's log)."""
    return stream is not None and stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def _writes_to_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and _is_terminal_stream(handler.stream)


class ModuleLogRouter(logging.Handler):
    """Sits on the `logging` module's root logger. What a module logs through `logging` itself
    (`logging.info(...)`, its own `getLogger(__name__)`, a library it calls) becomes a line of
    the module whose run is on this thread, once; on other threads, warnings and errors are
    logged under their own logger's name (a library AutoHome uses, or a module's own thread).

    Its presence also makes a module's `logging.basicConfig()` do nothing: the root logger
    has a handler already."""

    def __init__(self, module_logger: Callable[[], logging.Logger | None], fallback: logging.Logger) -> None:
        super().__init__(logging.NOTSET)
        self._module_logger = module_logger
        self._fallback = fallback

    def handle(self, record: logging.LogRecord) -> bool:
        """Route the record; no lock needed, nothing of this handler's changes."""
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Hand the record to the module's logger, or to AutoHome's own tree."""
        target = self._module_logger()
        if target is None:
            if record.levelno >= logging.WARNING:
                self._fallback.handle(record)
            return
        if _shown_on_the_way(record.name):
            return  # a handler of the module's own writes it to stdout or stderr: captured once already
        if record.name != "root":
            record.msg, record.args = f"{record.name}: {record.getMessage()}", None
        record.name = target.name
        target.handle(record)


def _shown_on_the_way(name: str) -> bool:
    """Whether a logger between `name` and the root has a handler that writes to stdout or
    stderr, and passes the record on to it (what `logging.StreamHandler()` on a module's own
    logger does)."""
    if name == "root":
        return False
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None and logger.parent is not None:
        if any(_writes_to_terminal(handler) for handler in logger.handlers):
            return True
        if not logger.propagate:
            return True  # the record never reaches the root: we are not called
        logger = logger.parent
    return False


class LoggingGuard:
    """Keeps AutoHome's part of the process's logging as set up, whatever a module does to the
    `logging` module: called after each run and each import with the module's name, it puts
    back what changed and says once per module what it found.

    AutoHome's own loggers live in a tree of their own (logs/tree.py) that no `logging` call
    reaches; what is watched here is the shared part: the router on the root logger, the
    root's level, `logging.disable`, handlers that write the terminal behind AutoHome's back,
    the record factory, and the handlers and levels of AutoHome's own loggers (which a module
    can reach through its `log.parent`)."""

    def __init__(self, router: ModuleLogRouter, front: logging.Handler, level: int) -> None:
        self.router = router
        self.front = front
        self.level = level
        self._autohome = get_logger("autohome")
        self._modules = get_logger(MODULE_LOGGER)
        self._factory = logging.getLogRecordFactory()
        self._warned: set[str] = set()
        self._root_handlers = list(logging.root.handlers)  # as the last look found them
        self._own_handlers = [front]

    def is_intact(self) -> bool:
        """Whether everything is as AutoHome set it up (a few attribute reads: every run asks)."""
        root = logging.root
        return (self.router in root.handlers and root.level == logging.INFO
                and root.manager.disable == 0 and self._autohome.handlers == [self.front]
                and self._autohome.level == self.level and self._modules.level == logging.DEBUG
                and not self._autohome.disabled and not self._modules.disabled
                and logging.getLogRecordFactory() is self._factory
                and not any(_writes_to_terminal(handler) for handler in root.handlers))

    def check(self, culprit: str) -> None:
        """After `culprit` ran or was imported: put back what it changed, and say so once.
        Every run asks, so the usual answer (nothing changed since the last look) takes a few
        comparisons; only then is everything looked at."""
        root = logging.root
        if (root.handlers == self._root_handlers and root.level == logging.INFO and not root.manager.disable
                and self._autohome.handlers == self._own_handlers and self._autohome.level == self.level
                and self._modules.level == logging.DEBUG and logging.getLogRecordFactory() is self._factory):
            return
        if self.is_intact():  # a change that is not AutoHome's part (a test runner's handler, say)
            self._root_handlers = list(root.handlers)
            return
        changed = self.restore()
        self._root_handlers = list(root.handlers)
        if culprit not in self._warned:
            self._warned.add(culprit)
            get_logger("autohome.logs").warning(
                "module %s changed the logging set-up (%s); AutoHome put its own back. Log "
                "through the `log` that run() is handed, or logging.getLogger(__name__) without "
                "configuring logging: either way the lines are the module's", culprit, "; ".join(changed))

    def restore(self) -> list[str]:
        """Put AutoHome's part back; return what had changed."""
        changed = []
        root = logging.root
        if root.manager.disable:
            changed.append("logging.disable()")
            logging.disable(logging.NOTSET)
        strays = [handler for handler in root.handlers if _writes_to_terminal(handler)]
        for handler in strays:
            root.removeHandler(handler)
        if strays:
            changed.append("a handler writing to the terminal on the root logger, as basicConfig() adds")
        if self.router not in root.handlers:
            changed.append("the root logger's handlers")
            root.addHandler(self.router)
        if root.level != logging.INFO:
            changed.append(f"the root logger's level ({logging.getLevelName(root.level)})")
            root.setLevel(logging.INFO)
        if logging.getLogRecordFactory() is not self._factory:
            changed.append("the log record factory")
            logging.setLogRecordFactory(self._factory)
        if self._autohome.handlers != [self.front] or self._autohome.disabled:
            changed.append("AutoHome's own logger")
            self._autohome.handlers[:] = [self.front]
            self._autohome.disabled = False
        modules = self._modules
        if self._autohome.level != self.level or modules.level != logging.DEBUG or modules.disabled:
            changed.append("the levels of AutoHome's loggers")
            self._autohome.setLevel(self.level)
            modules.setLevel(logging.DEBUG)
            modules.disabled = False
        return changed or ["something"]
