"""The queue every thread puts its log records on, bounded in bytes (see LogQueue)."""

from __future__ import annotations

import queue
import threading
from collections import deque

MAX_QUEUED_BYTES = 64 * 1024 * 1024  # of records waiting for the log writer
RECORD_BYTES = 1024  # what a record costs besides its message, about


class LogQueue:
    """What every thread puts its records on, bounded: past MAX_QUEUED_BYTES (the messages'
    text, and about a kilobyte for each record itself) the oldest are dropped and counted, so
    a module that logs faster than the disk takes its lines cannot grow AutoHome's memory.
    Its put and get are those of queue.SimpleQueue, for QueueHandler and the writer."""

    def __init__(self, max_bytes: int = MAX_QUEUED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: deque[tuple[object, int]] = deque()
        self._bytes = 0
        self._dropped = 0
        self._lock = threading.Lock()  # a plain lock: every log line takes it
        self._ready = threading.Condition(self._lock)
        self._is_waiting = False  # the writer waits in get(): only then is a put announced

    def put(self, item: object) -> None:
        """Queue a record (a LogRecord, or a writer.Line). (_put, spelled out: every log
        line of every run comes here.)"""
        msg = item.msg  # type: ignore[attr-defined]
        size = RECORD_BYTES + len(msg) if type(msg) is str else RECORD_BYTES
        with self._lock:
            self._items.append((item, size))
            self._bytes += size
            if self._bytes > self.max_bytes:
                self._drop_oldest()
            if self._is_waiting:
                self._ready.notify()

    put_nowait = put  # what logging.handlers.QueueHandler calls

    def put_signal(self, item: object) -> None:
        """Queue one of the writer's own signals (a flush waiting, the stop): never dropped."""
        self._put(item, 0)

    def _put(self, item: object, size: int) -> None:
        with self._lock:
            self._items.append((item, size))
            self._bytes += size
            if self._bytes > self.max_bytes:
                self._drop_oldest()
            if self._is_waiting:
                self._ready.notify()

    def _drop_oldest(self) -> None:
        # Called with the lock held.
        while self._bytes > self.max_bytes and len(self._items) > 1:
            oldest, oldest_size = self._items[0]
            if not oldest_size:
                break  # a signal: the records behind it wait their turn
            self._items.popleft()
            self._bytes -= oldest_size
            self._dropped += 1

    def get(self) -> object:
        """The oldest item, waiting for one."""
        with self._lock:
            if not self._items:
                self._is_waiting = True
                self._ready.wait_for(lambda: self._items)
                self._is_waiting = False
            return self._take()

    def take(self, items: int, chars: int) -> tuple[list[object], int]:
        """As many items as wait, at most `items` of them and about `chars` of their messages'
        text, and how much text they hold (under one hold of the lock: the writer takes a
        burst's lines in a few calls)."""
        taken: list[object] = []
        held = 0
        with self._lock:
            while self._items and len(taken) < items and held < chars:
                item, size = self._items.popleft()
                self._bytes -= size
                taken.append(item)
                held += size - RECORD_BYTES if size else 0
        return taken, held

    def get_nowait(self) -> object:
        """The oldest item, or queue.Empty."""
        with self._ready:
            if not self._items:
                raise queue.Empty
            return self._take()

    def _take(self) -> object:
        item, size = self._items.popleft()
        self._bytes -= size
        return item

    @property
    def bytes_waiting(self) -> int:
        """What the records waiting cost, about."""
        return self._bytes

    def take_dropped(self) -> int:
        """How many records were dropped since the last call."""
        with self._ready:
            dropped, self._dropped = self._dropped, 0
            return dropped
