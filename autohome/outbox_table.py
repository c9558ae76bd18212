"""The outbox's rows in the state database: queued, sent and failed notifications."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from autohome.db import Database, as_text, as_time


class OutboxRow(NamedTuple):
    """One queued notification as stored."""

    id: int
    created: datetime
    sender: str
    fields: dict[str, Any]
    state: str  # pending, sending, sent, failed, undeliverable, uncertain
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    sent_at: datetime | None


_OUTBOX_COLUMNS = "id, created, sender, fields, state, attempts, next_attempt, last_error, sent_at"


def _outbox_row(row: tuple[Any, ...]) -> OutboxRow:
    i, created, sender, fields, state, attempts, next_attempt, error, sent_at = row
    return OutboxRow(i, as_time(created), sender, json.loads(fields), state, attempts,  # type: ignore[arg-type]
                     as_time(next_attempt), error, as_time(sent_at))


class OutboxTable:
    """The outbox's rows, through the Database's single connection and lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # `status` asks for the counts on every call: they are read again only after a write.
        self._writes = 0
        self._counts: tuple[int, dict[str, int]] | None = None

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self.db.transaction() as conn:
            self._writes += 1  # under the database's lock, so no count is lost
            yield conn

    def add(self, created: datetime, sender: str, fields: dict[str, Any], state: str) -> int:
        """Queue a message; return its id."""
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (created, sender, fields, state, next_attempt) VALUES (?, ?, ?, ?, ?)",
                (as_text(created), sender, json.dumps(fields), state, as_text(created)),
            )
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
            conn.execute(f"UPDATE outbox SET {columns} WHERE id = ?", (*values, message_id))

    def recover(self, can_send: bool) -> tuple[int, int]:
        """At start-up: a message caught mid-send is 'uncertain' (never sent twice); messages
        kept while Pushover was not configured become pending once it is."""
        with self._writing() as conn:
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
        """How many messages are in each state (read again only after a change)."""
        cached, writes = self._counts, self._writes
        if cached is not None and cached[0] == writes:
            return dict(cached[1])
        counts = dict(self.db.query("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        self._counts = (writes, counts)  # a write during the query leaves it stale: writes moved on
        return dict(counts)

    def prune_sent(self, before: datetime) -> int:
        """Forget sent messages older than `before`; return how many."""
        with self._writing() as conn:
            return conn.execute("DELETE FROM outbox WHERE state = 'sent' AND sent_at < ?",
                                (as_text(before),)).rowcount

    def get_meta(self, key: str) -> str | None:
        """A stored value such as the last known quota."""
        return self.db.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a value such as the last known quota."""
        self.db.set_meta(key, value)
