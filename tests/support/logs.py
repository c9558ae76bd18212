"""Watching AutoHome's loggers: wait for a line, or hand its records to pytest's caplog."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from autohome.logs.tree import get_logger
from support.clock import WAIT_S


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


class ToCaplog(logging.Handler):
    """Hands AutoHome's records (its own logger tree, apart from logging's) to pytest's caplog."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        super().__init__(logging.NOTSET)
        self.caplog = caplog

    def emit(self, record: logging.LogRecord) -> None:
        self.caplog.handler.handle(record)
