"""The outbox's rows in the state database: queued, sent and failed notifications."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from autohome.storage.db import Database, as_text, as_time
from autohome.text import Word


class Delivery(Word):
    """Where a notification stands, as the outbox stores and the console shows it."""

    PENDING = "pending"  # waiting to be sent, or to be tried again
    SENDING = "sending"  # handed to Pushover now
    SENT = "sent"
    FAILED = "failed"  # refused by Pushover: not tried again
    UNDELIVERABLE = "undeliverable"  # no Pushover keys: sent once they are set
    UNCERTAIN = "uncertain"  # AutoHome stopped while sending it: never sent twice
    TEST = "test"  # test mode keeps it and shows it, never sends it


# The states a message is done with: pruned after a while.
DONE = (Delivery.SENT, Delivery.FAILED, Delivery.UNDELIVERABLE, Delivery.UNCERTAIN, Delivery.TEST)


class OutboxRow(NamedTuple):
    """One queued notification as stored."""

    id: int
    created: datetime
    sender: str
    fields: dict[str, Any]
    state: Delivery
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    sent_at: datetime | None


_OUTBOX_COLUMNS = "id, created, sender, fields, state, attempts, next_attempt, last_error, sent_at"


def _outbox_row(row: tuple[Any, ...]) -> OutboxRow:
    i, created, sender, fields, state, attempts, next_attempt, error, sent_at = row
    return OutboxRow(i, as_time(created), sender, json.loads(fields), Delivery(state), attempts,  # type: ignore[arg-type]
                     as_time(next_attempt), error, as_time(sent_at))


class OutboxTable:
    """The outbox's rows, through the Database's single connection and lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # `status` asks for the counts on every call: counted once, then kept up to date by
        # each write, since a recount reads every row.
        self._counts: dict[str, int] | None = None

    @contextmanager
    def _writing(self, recount: bool = False) -> Iterator[sqlite3.Connection]:
        with self.db.transaction() as conn:
            if recount:  # a write whose effect on the counts is not known here
                self._counts = None
            yield conn

    def _count(self, state: str, change: int) -> None:
        # Called inside a write transaction, under the database's lock.
        if self._counts is not None:
            self._counts[state] = self._counts.get(state, 0) + change
            if not self._counts[state]:
                del self._counts[state]

    def add(self, created: datetime, sender: str, fields: dict[str, Any], state: str) -> int:
        """Queue a message; return its id."""
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (created, sender, fields, state, next_attempt) VALUES (?, ?, ?, ?, ?)",
                (as_text(created), sender, json.dumps(fields), state, as_text(created)),
            )
            self._count(state, 1)
            return int(cursor.lastrowid or 0)

    def head(self) -> OutboxRow | None:
        """The oldest message still to send: messages go out in the order they were queued."""
        rows = self.db.query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' ORDER BY id LIMIT 1")
        return _outbox_row(rows[0]) if rows else None

    def update(self, message_id: int, **changes: Any) -> None:
        """Change some columns of one message."""
        columns = ", ".join(f"{name} = ?" for name in changes)
        values = [as_text(v) if isinstance(v, datetime) else v for v in changes.values()]
        with self._writing() as conn:
            if "state" in changes:
                was = conn.execute("SELECT state FROM outbox WHERE id = ?", (message_id,)).fetchone()
                if was is not None:
                    self._count(was[0], -1)
                    self._count(changes["state"], 1)
            conn.execute(f"UPDATE outbox SET {columns} WHERE id = ?", (*values, message_id))

    def recover(self, can_send: bool) -> tuple[int, int]:
        """At start-up: a message caught mid-send is 'uncertain' (never sent twice); messages
        kept while Pushover was not configured become pending once it is."""
        with self._writing(recount=True) as conn:
            uncertain = conn.execute(
                "UPDATE outbox SET state = 'uncertain', last_error = ? WHERE state = 'sending'",
                ("AutoHome stopped while sending it: it may or may not have arrived",),
            ).rowcount
            revived = conn.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'undeliverable'"
            ).rowcount if can_send else 0
        return uncertain, revived

    def get(self, message_id: int) -> OutboxRow | None:
        """One message by id, or None."""
        rows = self.db.query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (message_id,))
        return _outbox_row(rows[0]) if rows else None

    def listing(self, limit: int) -> list[OutboxRow]:
        """The newest messages, newest first."""
        rows = self.db.query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [_outbox_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many messages are in each state (counted once, then kept by each write)."""
        counts = self._counts
        if counts is None:
            with self.db.transaction() as conn:  # under the lock: no write slips in between
                rows = conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
                counts = self._counts = dict(rows)
        return dict(counts)

    def prune(self, before: datetime, keep_at_most: int) -> int:
        """Forget messages that are done with (sent, failed, undeliverable, uncertain, test)
        queued before `before`, and the oldest of them beyond `keep_at_most`; return how many.
        Pending ones are never forgotten."""
        done = f"state IN ({', '.join(repr(state.value) for state in DONE)})"
        with self._writing(recount=True) as conn:
            pruned = conn.execute(f"DELETE FROM outbox WHERE {done} AND created < ?",  # noqa: S608 - a constant
                                  (as_text(before),)).rowcount
            pruned += conn.execute(
                f"DELETE FROM outbox WHERE {done} AND id <= (SELECT id FROM outbox WHERE {done} "  # noqa: S608
                "ORDER BY id DESC LIMIT 1 OFFSET ?)", (keep_at_most,)).rowcount
            return pruned

    def get_meta(self, key: str) -> str | None:
        """A stored value such as the last known quota."""
        return self.db.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a value such as the last known quota."""
        self.db.set_meta(key, value)


def store_held(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Store messages that were held in memory, as they are now: (created, sender, fields,
    state, attempts, next_attempt, last_error, sent_at) each."""
    conn.executemany(
        "INSERT INTO outbox (created, sender, fields, state, attempts, next_attempt, last_error, "
        "sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(as_text(created), sender, json.dumps(fields), state, attempts, as_text(next_attempt),
          last_error, as_text(sent_at))
         for created, sender, fields, state, attempts, next_attempt, last_error, sent_at in rows])

