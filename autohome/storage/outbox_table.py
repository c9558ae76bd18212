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
    channel: str = "pushover"
    hold_until: datetime | None = None  # quiet hours: not sent before
    receipt: str | None = None  # an emergency's Pushover receipt
    receipt_state: str | None = None  # waiting, acknowledged by ..., expired, cancelled
    attachment_id: int | None = None


_OUTBOX_COLUMNS = ("id, created, sender, fields, state, attempts, next_attempt, last_error, sent_at, "
                   "channel, hold_until, receipt, receipt_state, attachment_id")


def _outbox_row(row: tuple[Any, ...]) -> OutboxRow:
    (i, created, sender, fields, state, attempts, next_attempt, error, sent_at, channel, hold_until,
     receipt, receipt_state, attachment_id) = row
    return OutboxRow(i, as_time(created), sender, json.loads(fields), Delivery(state), attempts,  # type: ignore[arg-type]
                     as_time(next_attempt), error, as_time(sent_at), channel, as_time(hold_until),
                     receipt, receipt_state, attachment_id)


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

    def add(self, created: datetime, sender: str, fields: dict[str, Any], state: str,
            channels: list[str] | None = None, hold_until: datetime | None = None,
            attachment: tuple[str, bytes, str] | None = None) -> int:
        """Queue a message, one row per channel (each with its own delivery state) in one
        transaction, its attachment stored once beside them; return the first row's id."""
        with self._writing() as conn:
            attachment_id = None
            if attachment is not None:
                attachment_id = conn.execute("INSERT INTO attachments (name, data, mime) VALUES (?, ?, ?)",
                                             attachment).lastrowid
            first = 0
            for channel in channels or ["pushover"]:
                cursor = conn.execute(
                    "INSERT INTO outbox (created, sender, fields, state, next_attempt, channel, hold_until, "
                    "attachment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (as_text(created), sender, json.dumps(fields), state, as_text(created), channel,
                     as_text(hold_until), attachment_id),
                )
                self._count(state, 1)
                first = first or int(cursor.lastrowid or 0)
            return first

    def head(self, channel: str = "pushover", now: datetime | None = None) -> OutboxRow | None:
        """The oldest message still to send on a channel: messages go out in the order they
        were queued, but for those held for quiet hours, which wait until `hold_until`."""
        held = "" if now is None else "AND (hold_until IS NULL OR hold_until <= ?)"
        rows = self.db.query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' AND channel = ? {held} "  # noqa: S608
            "ORDER BY id LIMIT 1", (channel,) if now is None else (channel, as_text(now)))
        return _outbox_row(rows[0]) if rows else None

    def next_release(self, channel: str, now: datetime) -> datetime | None:
        """When the first message held for quiet hours on a channel may go."""
        rows = self.db.query("SELECT MIN(hold_until) FROM outbox WHERE state = 'pending' AND channel = ? "
                             "AND hold_until > ?", (channel, as_text(now)))
        return as_time(rows[0][0]) if rows and rows[0][0] else None

    def waiting_receipts(self) -> list[OutboxRow]:
        """Emergencies sent and not yet acknowledged, expired or cancelled."""
        rows = self.db.query(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE receipt_state = 'waiting' ORDER BY id")
        return [_outbox_row(row) for row in rows]

    def attachment(self, attachment_id: int) -> tuple[str, bytes, str] | None:
        """An attachment's file name, bytes and MIME type."""
        rows = self.db.query("SELECT name, data, mime FROM attachments WHERE id = ?", (attachment_id,))
        return (rows[0][0], bytes(rows[0][1]), rows[0][2]) if rows else None

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

    def give_up(self, message_id: int, reason: str) -> bool:
        """Make a pending message `failed` with `reason`; False if it is not pending (being
        sent now, say): the check and the change are one statement."""
        with self._writing() as conn:
            changed = conn.execute("UPDATE outbox SET state = 'failed', last_error = ? "
                                   "WHERE id = ? AND state = 'pending'", (reason, message_id)).rowcount
            if changed:
                self._count("pending", -1)
                self._count("failed", 1)
        return bool(changed)

    def recover(self, can_send: str) -> tuple[int, int]:
        """At start-up: a message caught mid-send is 'uncertain' (never sent twice); messages
        kept while no channel was configured become pending on `can_send`, the first channel
        configured now ("": none)."""
        with self._writing(recount=True) as conn:
            uncertain = conn.execute(
                "UPDATE outbox SET state = 'uncertain', last_error = ? WHERE state = 'sending'",
                ("AutoHome stopped while sending it: it may or may not have arrived",),
            ).rowcount
            revived = conn.execute(
                "UPDATE outbox SET state = 'pending', channel = ? WHERE state = 'undeliverable'", (can_send,)
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

    def waiting_by_channel(self) -> dict[str, int]:
        """How many messages wait on each channel (pending or being sent)."""
        rows = self.db.query("SELECT channel, COUNT(*) FROM outbox WHERE state IN ('pending', 'sending') "
                             "GROUP BY channel ORDER BY channel")
        return dict(rows)

    def retrying_by_channel(self) -> dict[str, str]:
        """For each channel whose waiting messages have failed to go: the error of the oldest."""
        rows = self.db.query("SELECT channel, last_error FROM outbox WHERE state IN ('pending', 'sending') "
                             "AND attempts > 0 AND last_error IS NOT NULL ORDER BY id DESC")
        return dict(rows)  # the oldest last: it wins

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
            if pruned:  # attachments no message refers to any more
                conn.execute("DELETE FROM attachments WHERE id NOT IN "
                             "(SELECT attachment_id FROM outbox WHERE attachment_id IS NOT NULL)")
            return pruned

    def get_meta(self, key: str) -> str | None:
        """A stored value such as the last known quota."""
        return self.db.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        """Store a value such as the last known quota."""
        self.db.set_meta(key, value)


def store_held(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Store messages that were held in memory, as they are now: (created, sender, fields,
    state, attempts, next_attempt, last_error, sent_at, channel) each."""
    conn.executemany(
        "INSERT INTO outbox (created, sender, fields, state, attempts, next_attempt, last_error, "
        "sent_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(as_text(created), sender, json.dumps(fields), state, attempts, as_text(next_attempt),
          last_error, as_text(sent_at), channel)
         for created, sender, fields, state, attempts, next_attempt, last_error, sent_at, channel in rows])

