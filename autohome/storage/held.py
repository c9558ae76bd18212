"""What the state database could not take (a full disk, a failing one), kept in memory and
written again every RETRY_S by a `db-retry` thread that exists only while something is held.

Held are each module's schedule position and pause (the latest of each) and the modules'
store writes; reads of the store see a held write first. Others hold their own rows and
hand a writer here (`hold_writer`: the outbox's notifications). Finished runs are held by
the state writer itself (runwriter.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Writer = Callable[[Any], Callable[[], None]]  # (connection) -> what to call once committed

RETRY_S = 5.0
MAX_HELD_STORE = 10_000  # store writes kept at most; past that the oldest are given up
DELETED = None  # a held store write that forgets its key


class HeldWrites:
    """Held module rows and store writes; `write_all(modules, store)` writes them (raising
    if it cannot), on the retry thread."""

    def __init__(self, write_all: Callable[[dict[str, Any], dict[tuple[str, str], str | None],
                                            list[Writer]], list[Callable[[], None]]],
                 retry_s: float = RETRY_S, on_empty: Callable[[], None] = lambda: None) -> None:
        self._write_all = write_all
        self._on_empty = on_empty  # everything held is written
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._modules: dict[str, Any] = {}  # name -> ModuleRow
        self._store: dict[tuple[str, str], str | None] = {}  # (module, key) -> JSON text, or DELETED
        self._writers: list[Writer] = []  # others' rows, each written by its own function
        self._thread: threading.Thread | None = None
        self._attempting = threading.Lock()  # one attempt at a time: the thread's, or retry_now's
        self._stop = threading.Event()
        self.given_up = 0  # store writes dropped past MAX_HELD_STORE

    def __bool__(self) -> bool:
        return bool(self._modules or self._store or self._writers)

    def hold_writer(self, writer: Writer) -> None:
        """Have `writer(conn)` write its owner's held rows in the retry's transaction; it
        returns what to call once that transaction is committed (the owner forgets them)."""
        with self._lock:
            if writer not in self._writers:
                self._writers.append(writer)
            self._start()

    def hold_modules(self, rows: list[Any]) -> None:
        """Keep module rows to write later (the latest of each module wins)."""
        with self._lock:
            for row in rows:
                self._modules[row.name] = row
            self._start()

    def hold_store(self, module: str, key: str, encoded: str | None) -> None:
        """Keep a store write (None: a delete) to write later."""
        with self._lock:
            self._store.pop((module, key), None)  # the newest goes last
            self._store[(module, key)] = encoded
            while len(self._store) > MAX_HELD_STORE:
                del self._store[next(iter(self._store))]
                self.given_up += 1
            self._start()

    def holds_store(self, module: str, key: str) -> bool:
        """Whether a write of that key waits here (a newer one must wait behind it)."""
        return (module, key) in self._store

    def store_value(self, module: str, key: str) -> tuple[bool, str | None] | None:
        """(found, JSON text) for a held write of that key, or None if none is held."""
        with self._lock:
            if (module, key) not in self._store:
                return None
            encoded = self._store[(module, key)]
            return encoded is not DELETED, encoded

    def store_values(self, module: str) -> dict[str, str | None]:
        """The module's held store writes: each key's JSON text (None: held as deleted)."""
        with self._lock:
            return {key: value for (name, key), value in self._store.items() if name == module}

    def close(self) -> None:
        """Stop retrying (at shutdown; what is held is lost, and was logged as failing)."""
        self._stop.set()

    def _start(self) -> None:
        # Called with the lock held.
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._retry, name="db-retry", daemon=True)
            self._thread.start()

    def retry_now(self) -> bool:
        """Try to write everything held now (a tick asks, so that test mode need not wait for
        real seconds); return whether nothing is held any more."""
        if not self:
            return True
        return self._attempt()

    def _retry(self) -> None:
        while not self._stop.wait(self.retry_s):
            if self._attempt():
                return

    def _attempt(self) -> bool:
        with self._attempting:
            with self._lock:
                modules, store, writers = dict(self._modules), dict(self._store), list(self._writers)
            if not modules and not store and not writers:
                return True
            try:
                committed = self._write_all(modules, store, writers)
            except Exception:  # noqa: BLE001 - still failing: kept, tried again (the trouble is reported once)
                return False
            for forget in committed:
                forget()
            with self._lock:  # forget what was written, unless it changed meanwhile
                self._writers = [writer for writer in self._writers if writer not in writers]
                for name, row in modules.items():
                    if self._modules.get(name) is row:
                        del self._modules[name]
                for key, value in store.items():
                    if key in self._store and self._store[key] is value:
                        del self._store[key]
                if self._modules or self._store or self._writers:
                    return False
                self._thread = None
        self._on_empty()
        return True
