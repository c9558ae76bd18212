"""The `log-writer` thread, which takes the records every thread puts on the queue (queue.py).

Threads only put records on one queue (through QueueFront, a QueueHandler of our own),
and for the lines every run writes, a `Line` tuple that the writer makes into the same
LogRecord; one thread takes them in batches and hands the records to the handlers that
setup.py sets up, so no module ever waits on the disk or the terminal.

Why not the standard QueueListener: it hands records over one at a time, and the
standard stream and file handlers flush after every record; a burst of runs logs
thousands of lines (see docs/performance.md, "Writers that batch").
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NamedTuple, Protocol

from autohome.clock import epoch_s
from autohome.logs.queue import LogQueue
from autohome.logs.tree import get_logger
from autohome.text import cut

MAX_MESSAGE_CHARS = 65536  # of one log message; the rest is counted in the line


class Line(NamedTuple):
    """An INFO line as a thread said it, made into a LogRecord by the log writer.

    Why: what a run costs around its module's code is paid on its fresh thread, while the
    next runs wait to start, and a tuple is far cheaper to make there than a LogRecord (see
    docs/performance.md, "Run lines"). Handlers still see only records, made in `record()`."""

    name: str
    msg: str
    args: tuple[object, ...]
    created: float
    thread_id: int | None
    thread_name: str

    def record(self) -> logging.LogRecord:
        """The record `get_logger(name).info(msg, *args)` would have made. It is
        filled in from a template, not by LogRecord(): the writer makes one per run line, and
        the constructor looks up the process and the source file for each."""
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = (_TEMPLATE or _template()).copy()
        fields["name"], fields["msg"], fields["args"] = self.name, self.msg, self.args
        fields["created"], fields["msecs"] = self.created, (self.created % 1) * 1000
        fields["thread"], fields["threadName"] = self.thread_id, self.thread_name
        record.__dict__ = fields
        return record


_TEMPLATE: dict[str, object] = {}


def _template() -> dict[str, object]:
    if not _TEMPLATE:
        _TEMPLATE.update(logging.LogRecord("", logging.INFO, __file__, 0, "", (), None).__dict__)
    return _TEMPLATE


class QueueFront(logging.Handler):
    """Puts records on the log writer's queue, as the standard QueueHandler does. The message
    is formatted here, while its arguments are as the caller meant them, but the record is
    not copied: the writer is in this process, so the copy that QueueHandler makes for other
    processes is waste. (Not a QueueHandler: logging.handlers costs start-up its imports.)"""

    def __init__(self, queue: LogQueue) -> None:
        super().__init__()
        self.queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record; a failure is reported as logging reports a handler's."""
        try:
            self.queue.put_nowait(self.prepare(record))
        except Exception:  # noqa: BLE001 - logging's own convention: handleError says it
            self.handleError(record)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """The record with its message made final, and cut to MAX_MESSAGE_CHARS: one huge
        message must not be copied through the writer, the file and every follower."""
        record.msg = cut(record.getMessage(), MAX_MESSAGE_CHARS)
        record.args = None
        return record


class LogWriter:
    """The `log-writer` thread: woken by a record, it lets LINGER_S pass so that the
    lines logged meanwhile join it, then hands each to the handlers and flushes them once.
    A burst of runs then costs a few wake-ups and writes rather than a system call and a
    hand-over of the GIL for every line. A line reaches the file LINGER_S late, or during a
    burst of lines up to MAX_LINGERS times that."""

    _STOP = object()
    BATCH = 16384
    BATCH_CHARS = 4_000_000
    LINGER_S = 0.02
    # While a burst goes on (this many lines or more came in during one linger), linger again,
    # up to this many times (a second): the burst's runs then do not compete with the writer
    # for the GIL, and its lines are written once it is over.
    BURST_LINES = 64
    MAX_LINGERS = 50

    def __init__(self, records: LogQueue, handlers: list[logging.Handler]) -> None:
        self.records = records
        self.handlers = handlers
        self._thread = threading.Thread(target=self._write, name="log-writer", daemon=True)
        self._stopping = threading.Event()
        self._stopped = False

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every record queued so far is written; return whether it is."""
        written = threading.Event()
        self.records.put_signal(written)
        return written.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write every record queued so far, then end the thread (waiting at most `timeout_s`:
        a stuck handler must not hold up the process's end)."""
        self._stopping.set()
        self.records.put_signal(self._STOP)
        self._thread.join(timeout_s)

    def _write(self) -> None:
        while not self._stopped:
            try:
                self._write_batch()
            except Exception:  # noqa: BLE001 - the one catch of this thread: logging itself failed
                # Nothing can be logged about the logger; say it where logging says its own errors.
                _say("autohome: the log writer failed and goes on:\n" + traceback.format_exc())

    def _write_batch(self) -> None:
        batch = [self.records.get()]
        chars = self.BATCH_CHARS  # of the batch's messages: what the writer holds is bounded too
        for _ in range(self.MAX_LINGERS):
            self._stopping.wait(self.LINGER_S)
            more, held = self.records.take(self.BATCH - len(batch), chars)
            batch += more
            chars -= held
            if len(more) < self.BURST_LINES or len(batch) >= self.BATCH or chars <= 0:
                break
            if any(isinstance(item, threading.Event) for item in more):
                break  # someone waits in flush(): write now
        self._stopped = any(item is self._STOP for item in batch)  # whatever happens below
        waiting: list[threading.Event] = []  # in flush()
        lines: list[logging.LogRecord] = []
        dropped = self.records.take_dropped()
        if dropped:
            lines.append(_dropped_notice(dropped, self.records.max_bytes))
        for item in batch:
            if type(item) is Line:
                lines.append(item.record())
            elif isinstance(item, logging.LogRecord):
                lines.append(item)
            elif isinstance(item, threading.Event):
                waiting.append(item)
        try:
            # Handler by handler, each flushed before the next: current.log comes first, so a
            # line that shows on the terminal is already in the file. One that fails does not
            # keep the lines from the others.
            for handler in self.handlers:
                try:
                    _hand_over(handler, lines)
                except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
                    _say(f"autohome: the log handler {type(handler).__name__} failed:\n"
                         + traceback.format_exc())
        finally:
            for written in waiting:
                written.set()


def _dropped_notice(dropped: int, max_bytes: int) -> logging.LogRecord:
    return logging.LogRecord(
        "autohome.logs", logging.WARNING, __file__, 0,
        "%d log line(s) dropped: they were logged faster than they could be written (more than %d MB "
        "waited); the flood's oldest lines went first", (dropped, max_bytes // (1024 * 1024)), None)


def _hand_over(handler: logging.Handler, lines: list[logging.LogRecord]) -> None:
    # Only the writer thread writes through these handlers, so Handler.handle's lock around
    # each record is waste; a handler with filters still gets handle().
    write = handler.handle if handler.filters else handler.emit
    level = handler.level
    for line in lines:
        if line.levelno >= level:
            write(line)
    handler.flush()


def _say(text: str) -> None:
    stream = sys.__stderr__
    if stream is not None:
        try:
            stream.write(text)
        except (OSError, ValueError):
            pass  # no terminal either


class RunLines:
    """The line every run logs ("module X finished in 0.001s", or "... failed after"), said as
    a `Line` tuple: the run's thread pays for a tuple, the log writer makes the record (see
    Line). "module X started" is a DEBUG line.
    Without a log writer (tests, embedding) a line is logged through its logger."""

    def __init__(self, logger: logging.Logger, setup: _LineSink | None = None) -> None:
        self.logger = logger
        self.setup = setup or _THROUGH_LOGGER

    def later(self, msg: str, *args: object, thread_name: str | None = None) -> Line | None:
        """`msg % args` as said now on this thread (or on behalf of the thread named), to
        `emit` later; None when INFO is off."""
        if not self.logger.isEnabledFor(logging.INFO):
            return None
        if thread_name is not None:
            return Line(self.logger.name, msg, args, self.setup.now(), None, thread_name)
        thread = threading.current_thread()
        return Line(self.logger.name, msg, args, self.setup.now(), thread.ident, thread.name)

    def emit(self, line: Line) -> None:
        """Log a line said earlier, with the thread it was said on and the time it is logged
        now: the log stays in time order (a run's "finished" line is logged once the run is
        stored, after lines said later)."""
        self.setup.put(line._replace(created=self.setup.now()))

    def debug(self, msg: str, *args: object, thread_name: str) -> None:
        """Log `msg % args` at DEBUG now, on behalf of the thread named; nothing unless DEBUG
        is on (the usual case: a run's "started" line)."""
        if self.logger.isEnabledFor(logging.DEBUG):
            record = self.logger.makeRecord(self.logger.name, logging.DEBUG, "", 0, msg, args, None)
            record.threadName = thread_name
            self.logger.handle(record)

    def log(self, msg: str, *args: object, thread_name: str | None = None) -> None:
        """Log `msg % args` at INFO now."""
        line = self.later(msg, *args, thread_name=thread_name)
        if line is not None:
            self.setup.put(line)


class _LineSink(Protocol):
    """Where run lines go, and the time they carry (logs.LogSetup)."""

    now: Callable[[], float]

    def put(self, line: Line) -> None: ...


class _ThroughLogger:
    """Without a log writer: each line is logged through its logger at once."""

    now = staticmethod(epoch_s)

    @staticmethod
    def put(line: Line) -> None:
        get_logger(line.name).handle(line.record())


_THROUGH_LOGGER = _ThroughLogger()
