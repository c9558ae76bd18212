"""Following the log live (`log -f`): the log writer hands each new entry to whoever follows.

With nobody following, a record costs one check of an empty list. A follower holds at most
`MAX_WAITING` entries and MAX_WAITING_CHARS of them: one that reads too slowly loses the
oldest and is told how many.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque

MAX_WAITING = 1000
MAX_WAITING_CHARS = 1_000_000


class Follower:
    """One reader's entries, waiting to be taken, and a socket that is readable while any
    wait, so a console session can wait on it beside its client's socket."""

    def __init__(self, followers: LogFollowers, limit: int = MAX_WAITING) -> None:
        self._followers = followers
        self._entries: deque[str] = deque(maxlen=limit)
        self._chars = 0
        self._lost = 0
        self._lock = threading.Lock()
        self._signalled = False
        self._shown: set[str] = set()  # lines the reader has already seen (the tail)
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)

    def fileno(self) -> int:
        """Readable while entries wait (for `selectors`)."""
        return self._wake_in.fileno()

    def push(self, entry: str) -> None:
        """Add an entry (from the log writer's thread)."""
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                self._lost += 1
                self._chars -= len(self._entries[0])
            self._entries.append(entry)
            self._chars += len(entry)
            while self._chars > MAX_WAITING_CHARS and len(self._entries) > 1:
                self._chars -= len(self._entries.popleft())
                self._lost += 1
            if self._signalled:
                return
            self._signalled = True
        try:
            self._wake_out.send(b"\0")
        except OSError:
            pass  # closed meanwhile; nobody reads any more

    def skip(self, shown: list[str]) -> None:
        """The reader has these lines already (the tail it was sent): the first entries that
        begin with one of them are not sent again."""
        with self._lock:
            self._shown = set(shown)

    def take(self) -> tuple[list[str], int]:
        """The entries waiting, oldest first, and how many were lost since the last take."""
        with self._lock:
            # The wake-up byte is read before the entries, under the lock: read after, it
            # could be the byte of an entry pushed meanwhile, left waiting with no byte to
            # wake the reader (and, signalled, none sent for the entries after it).
            try:
                self._wake_in.recv(64)
            except OSError:
                pass  # nothing to read: the entries came without a wake-up byte
            entries, lost = list(self._entries), self._lost
            self._entries.clear()
            self._chars = self._lost = 0
            self._signalled = False
            if self._shown:
                entries = self._unseen(entries)
        return entries, lost

    def _unseen(self, entries: list[str]) -> list[str]:
        for number, entry in enumerate(entries):
            if entry.split("\n", 1)[0] not in self._shown:
                self._shown = set()  # from here on, everything is new
                return entries[number:]
        return []

    def close(self) -> None:
        """Stop following."""
        self._followers.remove(self)
        self._wake_in.close()
        self._wake_out.close()


class LogFollowers(logging.Handler):
    """A handler on the log writer's thread that passes each entry to every follower."""

    def __init__(self, formatter: logging.Formatter, level: int | str = logging.INFO) -> None:
        super().__init__(level)
        self._followers: list[Follower] = []  # replaced, never changed: emit() reads it unlocked
        self.setFormatter(formatter)

    def follow(self) -> Follower:
        """A new follower, receiving the entries logged from now on."""
        follower = Follower(self)
        with self.lock:  # type: ignore[union-attr]
            self._followers = [*self._followers, follower]
        return follower

    def __len__(self) -> int:
        """How many follow now."""
        return len(self._followers)

    def remove(self, follower: Follower) -> None:
        """Forget a follower (Follower.close calls this)."""
        with self.lock:  # type: ignore[union-attr]
            self._followers = [kept for kept in self._followers if kept is not follower]

    def emit(self, record: logging.LogRecord) -> None:
        """Give the entry (a traceback included) to every follower; with none, do nothing.
        The log writer calls emit() directly, past Handler.handle's lock."""
        followers = self._followers
        if not followers:
            return
        entry = self.format(record)
        for follower in followers:
            follower.push(entry)
