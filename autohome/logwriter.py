"""How lines reach the `log-writer` thread, and the thread itself.

Every thread only puts on one queue: records (through QueueFront) and, for the lines every
run writes, plain tuples (through FastLog). One thread takes them in batches and hands them
to the handlers that logs.py sets up, so no module ever waits on the disk or the terminal.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable


class QueuedLine(NamedTuple):
    """An INFO line as FastLog queues it. The log writer hands it to AutoHome's handlers as
    it is, and makes a record of it only for any other handler."""

    name: str
    msg: str
    args: tuple[object, ...]
    created: float
    thread_name: str
    thread_id: int | None

    def message(self) -> str:
        """`msg % args`, as LogRecord.getMessage makes it."""
        return self.msg % self.args if self.args else self.msg

    def to_record(self) -> logging.LogRecord:
        """The record `logger.info(msg, *args)` would have made on the calling thread."""
        record = logging.LogRecord(self.name, logging.INFO, "", 0, self.msg, self.args, None)
        record.created = self.created
        record.msecs = (self.created % 1) * 1000
        record.thread, record.threadName = self.thread_id, self.thread_name
        return record


class FastLog:
    """`logger.info` for the lines every run writes ("module X started", "... finished").

    The line goes on the log writer's queue as a tuple, and the writer makes the text.
    Why: in a burst, the thread that starts modules waits while each new thread takes its
    first steps (CPython hands the new thread the GIL), so all a run does around its
    module's code is paid in full. A record made in place costs about 10 us there, a tuple
    about 1 us. One queue carries both, so lines keep their order. Without a log writer
    (tests, embedding) this is plain `logger.info`.
    """

    def __init__(self, logger: logging.Logger, records: queue.SimpleQueue[Any] | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.logger = logger
        self.records = records
        self.now = now

    def info(self, msg: str, *args: object) -> None:
        """Log `msg % args` at INFO, as the logger would."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if self.records is None:
            self.logger.info(msg, *args)
            return
        thread = threading.current_thread()
        self.records.put(QueuedLine(self.logger.name, msg, args, self.now(), thread.name, thread.ident))


@runtime_checkable
class TakesQueuedLines(Protocol):
    """A handler that writes a QueuedLine as it is (AutoHome's own handlers do)."""

    def write_line(self, queued: QueuedLine) -> None:
        """Write the line; no record is made for it."""


class QueueFront(logging.handlers.QueueHandler):
    """Puts records on the log writer's queue. The message is formatted here, while its
    arguments are as the caller meant them, but the record is not copied: the writer is
    in this process, so the copy that QueueHandler makes for other processes is waste."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record with its message made final."""
        record.msg = record.getMessage()
        record.args = None
        return record


class LogWriter:
    """The `log-writer` thread: woken by a record, it lets LINGER_S pass so that the
    lines logged meanwhile join it, then hands each to the handlers and flushes them once.
    A burst of runs then costs a few wake-ups and writes rather than a system call and a
    hand-over of the GIL for every line. A line reaches the file LINGER_S late at most, or,
    in a burst, once the runs whose end it reports are stored (see `before_write`)."""

    _STOP = object()
    BATCH = 1024
    LINGER_S = 0.02

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord],
                 handlers: list[logging.Handler]) -> None:
        self.records = records
        self.handlers = handlers
        self._thread = threading.Thread(target=self._write, name="log-writer", daemon=True)
        self._stopping = threading.Event()
        self.before_write: Callable[[], object] = lambda: None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every record queued so far is written; return whether it is."""
        written = threading.Event()
        self.records.put(written)  # type: ignore[arg-type]
        return written.wait(timeout_s)

    def stop(self) -> None:
        """Write every record queued so far, then end the thread."""
        self._stopping.set()
        self.records.put(self._STOP)  # type: ignore[arg-type]
        self._thread.join()

    def _write(self) -> None:
        while True:
            batch = [self.records.get()]
            self._stopping.wait(self.LINGER_S)
            while len(batch) < self.BATCH:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            self.before_write()
            waiting = [item for item in batch if isinstance(item, threading.Event)]  # in flush()
            stop = any(item is self._STOP for item in batch)
            lines = [item for item in batch if isinstance(item, (logging.LogRecord, QueuedLine))]
            # Handler by handler, each flushed before the next: current.log comes first, so a
            # line that shows on the terminal is already in the file.
            for handler in self.handlers:
                takes_lines = isinstance(handler, TakesQueuedLines)  # once a batch: it is slow
                for line in lines:
                    if isinstance(line, QueuedLine):
                        self._write_queued(handler, takes_lines, line)
                    elif line.levelno >= handler.level:
                        handler.handle(line)
                handler.flush()
            for written in waiting:
                written.set()
            if stop:
                return

    def _write_queued(self, handler: logging.Handler, takes_lines: bool, queued: QueuedLine) -> None:
        # AutoHome's own handlers take the line as it is; a record is made only for others.
        if logging.INFO < handler.level:
            return
        if takes_lines:
            handler.write_line(queued)  # type: ignore[attr-defined]
        else:
            handler.handle(queued.to_record())
