"""Notifications the state database could not take (a full or failing disk): kept in memory,
sent from there while the disk refuses (a warning about the disk must still reach the
phone), and stored, with how they went, once the database takes writes again."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from autohome.errors import NotifyError
from autohome.logs.tree import get_logger
from autohome.notifications.pushover import Attachment, Message

if TYPE_CHECKING:
    from autohome.notifications.channels import Channel
from autohome.storage.db import Connection, Database
from autohome.storage.outbox_table import Delivery, store_held

log = get_logger("autohome.outbox")

MAX_HELD = 1000  # messages kept in memory at most; past that the oldest are given up


class HeldMessage:
    """One message that is not in the database yet, and how its delivery went so far."""

    __slots__ = ("created", "sender", "fields", "state", "attempts", "next_attempt", "last_error", "sent_at",
                 "channel", "attachment")

    def __init__(self, created: datetime, sender: str, fields: dict[str, Any], state: Delivery,
                 channel: str = "pushover", attachment: Attachment | None = None) -> None:
        self.channel = channel
        self.attachment = attachment  # sent from memory; not stored with the message later
        self.created = created
        self.sender = sender
        self.fields = fields
        self.state = state
        self.attempts = 0
        self.next_attempt: datetime | None = None
        self.last_error: str | None = None
        self.sent_at: datetime | None = None


class HeldMessages:
    """The messages held in memory, in the order they were queued."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._messages: deque[HeldMessage] = deque()
        self._lock = threading.Lock()
        self.given_up = 0

    def __len__(self) -> int:
        return len(self._messages)

    def hold(self, message: HeldMessage) -> None:
        """Keep a message the database refused; it is stored once the database takes writes."""
        with self._lock:
            self._messages.append(message)
            if len(self._messages) > MAX_HELD:
                self._messages.popleft()
                self.given_up += 1
        self.db.held.hold_writer(self._write)

    def deliver_due(self, channel: Channel, now: datetime, clock_now: Callable[[], datetime],
                    retry_delay: Callable[[int], timedelta]) -> datetime | None:
        """Send a channel's held messages that are due, oldest first; return when one is due next."""
        if not self._messages:
            return None
        with self._lock:
            due = [message for message in self._messages
                   if message.state == Delivery.PENDING and message.channel == channel.name]
        next_due = None
        for message in due:
            if message.next_attempt is not None and message.next_attempt > now:
                next_due = min(next_due or message.next_attempt, message.next_attempt)
                continue
            message.attempts += 1
            try:
                channel.send(Message.from_form(message.fields), message.attachment)
            except NotifyError as exc:
                message.last_error = exc.reason
                if exc.is_final:
                    message.state = Delivery.FAILED
                    log.error("notification from %s (kept in memory) refused, not retried: %s",
                              message.sender, exc.reason)
                else:
                    message.next_attempt = now + retry_delay(message.attempts)
                    next_due = min(next_due or message.next_attempt, message.next_attempt)
                continue
            message.state, message.sent_at = Delivery.SENT, clock_now()
            log.info("notification from %s sent from memory (the database could not take it)", message.sender)
        return next_due

    def _write(self, conn: Connection) -> Callable[[], None]:
        """In the database's retry transaction: store every held message as it is now."""
        with self._lock:
            messages = list(self._messages)
        store_held(conn, [(message.created, message.sender, message.fields, message.state, message.attempts,
                           message.next_attempt or message.created, message.last_error, message.sent_at,
                           message.channel)
                          for message in messages])
        return lambda: self._forget(messages)

    def _forget(self, stored: list[HeldMessage]) -> None:
        with self._lock:
            stored_ids = {id(message) for message in stored}
            self._messages = deque(message for message in self._messages if id(message) not in stored_ids)
