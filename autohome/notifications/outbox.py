"""The outbox: every notification is written to the database first, then delivered by one
sender thread, in order, exactly once as far as Pushover's API allows.

`notify()` never waits on the network. A 4xx is final; a 5xx, a timeout or no network
is retried with growing pauses from 5 s; a 429 waits for the quota's reset time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from autohome.clock import Clock
from autohome.durations import format_duration
from autohome.errors import NotifyError
from autohome.logs.tree import get_logger
from autohome.notifications.held import HeldMessage, HeldMessages
from autohome.notifications.pushover import NOT_CONFIGURED, Message, PushoverClient, Quota
from autohome.storage.db import Database, StorageFailure
from autohome.storage.outbox_table import Delivery, OutboxRow, OutboxTable

log = get_logger("autohome.outbox")

FIRST_RETRY = timedelta(seconds=5)  # Pushover: never sooner than 5 s after a failed request
MAX_RETRY = timedelta(hours=1)
NO_RESET_HEADER_WAIT = timedelta(hours=1)
KEEP_SENT = timedelta(days=30)  # messages done with (sent, failed, ...) are kept this long
KEEP_DONE = 10_000  # and at most this many of them
QUOTA_KEY = "pushover_quota"
SENDER_PAUSE = timedelta(minutes=1)
PRUNE_EVERY = timedelta(days=1)


def retry_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, ... after the 1st, 2nd, 3rd failed attempt; at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)


class Outbox:
    """Queues messages in the database and delivers them from a single sender thread."""

    def __init__(self, db: Database, client: PushoverClient | None, clock: Clock,
                 is_test_mode: bool = False) -> None:
        self.table = OutboxTable(db)
        self.held = HeldMessages(db)  # what the database refused (held.py)
        self.is_test_mode = is_test_mode  # virtual time must not ring the phone: keep, never send
        self.client = None if is_test_mode else client
        self.clock = clock
        self._alarm = clock.alarm()  # raised by a new message and by stop()
        self._next_prune: datetime | None = None
        self._stopping = False
        self._finishing = False  # shutting down: send what is due now, wait for no retry
        self._thread: threading.Thread | None = None
        self.quota = self._stored_quota()

    # --- queueing (any thread) -------------------------------------------------------

    def queue(self, message: Message, sender: str) -> int:
        """Store a checked message for delivery; return its id. Never touches the network."""
        state = (Delivery.TEST if self.is_test_mode else Delivery.PENDING if self.client is not None
                 else Delivery.UNDELIVERABLE)
        created = self.clock.now()
        if message.timestamp is None:  # shown on the phone as when it happened, however late it arrives
            message = message._replace(timestamp=int(created.timestamp()))
        try:
            message_id = self.table.add(created, sender, message.form(), state)
        except (StorageFailure, OSError) as exc:  # a full disk: kept in memory, sent from there
            self.held.hold(HeldMessage(created, sender, message.form(), state))
            log.warning("notification from %s kept in memory: the state database cannot take it (%s); it "
                        "is %s, and stored once the database can", sender, exc,
                        "sent from there" if state is Delivery.PENDING else "kept")
            self.wake()
            return 0
        if self.is_test_mode:
            log.info("notification %d from %s not sent: test mode sends nothing (-t --notify does) "
                     "(message: %r)", message_id, sender, message.message)
        elif self.client is None:
            log.warning("notification %d from %s kept as undeliverable: %s (message: %r)",
                        message_id, sender, NOT_CONFIGURED, message.message)
        if state is not Delivery.PENDING and message_id % 1000 == 0 and self._done() > KEEP_DONE:
            self._next_prune = None  # a flood of kept messages: prune now, not tomorrow
            self.prune_if_due(created)
        self.wake()
        return message_id

    def _done(self) -> int:
        """How many messages are done with (kept, not to be sent)."""
        return sum(count for state, count in self.table.counts().items() if state != Delivery.PENDING)

    def wake(self) -> None:
        """Have the sender look at the outbox now."""
        self._alarm.raise_()

    def resend(self, message_id: int) -> str:
        """Queue a failed, uncertain or undeliverable message again; say what happened."""
        row = self.table.get(message_id)
        if row is None:
            return f"no notification {message_id}, see 'notifications'"
        if self.is_test_mode:
            return f"notification {message_id} is kept: test mode sends nothing (-t --notify does)"
        if self.client is None:
            return f"notification {message_id} is kept: {NOT_CONFIGURED}"
        if row.state in (Delivery.PENDING, Delivery.SENDING, Delivery.SENT):
            return (f"notification {message_id} is {row.state}: only a failed, uncertain or "
                    "undeliverable one is sent again")
        self.table.update(message_id, state=Delivery.PENDING, attempts=0, next_attempt=self.clock.now(),
                          last_error=None)
        log.info("notification %d from %s queued again by hand", message_id, row.sender)
        self.wake()
        return f"notification {message_id} queued again"

    def get(self, message_id: int) -> OutboxRow | None:
        """One message by id."""
        return self.table.get(message_id)

    def prune_if_due(self, now: datetime) -> datetime:
        """Once a day (and at start), forget messages that are done with (sent, failed,
        undeliverable, ...) older than 30 days, and the oldest beyond KEEP_DONE, so the
        database stops growing, whether Pushover is configured or not; return when to prune
        next. (The sender calls it; without one, the tick does.)"""
        if self._next_prune is None or now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            try:
                pruned = self.table.prune(now - KEEP_SENT, KEEP_DONE)
            except StorageFailure:  # the database cannot take it now: tomorrow
                return self._next_prune
            if pruned:
                log.info("pruned %d notification(s) done with (older than 30 days, or beyond the newest %d)",
                         pruned, KEEP_DONE)
        return self._next_prune

    # --- the sender ------------------------------------------------------------------

    def start(self) -> None:
        """Recover what the last run left mid-send or undeliverable; start the sender thread."""
        uncertain, revived = self.table.recover(can_send=self.client is not None)
        if uncertain:
            log.warning("%d notification(s) were being sent when AutoHome stopped; they are marked "
                        "uncertain and not sent again (Pushover may or may not have them)", uncertain)
        if revived:
            log.info("Pushover is configured now: %d kept notification(s) will be sent", revived)
        if self.client is None:
            return
        self._thread = threading.Thread(target=self._run, name="notify-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is due now, within `timeout_s`, and stop the sender; messages waiting
        for a retry, and whatever the time left does not reach, stay queued for next time."""
        self._finishing = True
        self._alarm.raise_()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._stopping = True  # past the time: stop after the message in hand
        if self.client is not None:
            self.client.close()

    def _run(self) -> None:
        # Retries wait on the daemon's clock: real time, suspended time and test mode's
        # virtual time alike, so nothing else has to poke the sender.
        while not self._stopping:
            self._alarm.reset()
            try:
                now = self.clock.now()
                held_due = self.held.deliver_due(self.client, now, self.clock.now, retry_delay)
                next_due = min(filter(None, (self.deliver_due(now), held_due)), default=None)
                next_prune = self.prune_if_due(now)
            except Exception:  # the database, say: the messages stay queued
                log.exception("the notification sender failed; trying again in %s",
                              format_duration(SENDER_PAUSE))
                next_due = next_prune = self.clock.now() + SENDER_PAUSE
            if self._finishing:
                return
            self.clock.wait_until(min(next_prune, next_due or next_prune), self._alarm)

    def deliver_due(self, now: datetime) -> datetime | None:
        """Send queued messages in order while they are due; return when to look again
        (None: nothing waits)."""
        while not self._stopping:
            head = self.table.head()
            if head is None:
                return None
            if head.next_attempt is not None and head.next_attempt > now:
                return head.next_attempt
            self._attempt(head, now)
        return None

    def _attempt(self, row: OutboxRow, now: datetime) -> None:
        assert self.client is not None
        # Recorded before the request: a crash from here on leaves it 'sending', which the
        # next start marks uncertain instead of sending it twice.
        self.table.update(row.id, state=Delivery.SENDING, attempts=row.attempts + 1)
        try:
            request_id = self.client.send(Message.from_form(row.fields))
        except NotifyError as exc:
            self._remember_quota()
            self._failed(row, now, exc)
            return
        self._remember_quota()
        self.table.update(row.id, state=Delivery.SENT, sent_at=self.clock.now(), last_error=None)
        log.info("notification %d from %s sent (request %s)", row.id, row.sender, request_id)

    def _failed(self, row: OutboxRow, now: datetime, exc: NotifyError) -> None:
        attempts = row.attempts + 1
        if exc.is_final:
            self.table.update(row.id, state=Delivery.FAILED, last_error=exc.reason)
            log.error("notification %d from %s refused, not retried: %s", row.id, row.sender, exc.reason)
            return
        if exc.status == 429:
            reset = self.quota.reset_at if self.quota else None
            retry_at = (datetime.fromtimestamp(reset, timezone.utc) if reset
                        else now + NO_RESET_HEADER_WAIT)
            retry_at = max(retry_at, now + FIRST_RETRY)
        else:
            retry_at = now + retry_delay(attempts)
        self.table.update(row.id, state=Delivery.PENDING, next_attempt=retry_at, last_error=exc.reason)
        log.warning("notification %d from %s not delivered (attempt %d): %s; retrying at %s",
                    row.id, row.sender, attempts, exc.reason, retry_at.isoformat(timespec="seconds"))

    def _remember_quota(self) -> None:
        quota = self.client.quota if self.client else None
        if quota is not None and quota != self.quota:
            self.quota = quota
            self.table.set_meta(QUOTA_KEY, f"{quota.limit} {quota.remaining} {quota.reset_at}")

    def _stored_quota(self) -> Quota | None:
        text = self.table.get_meta(QUOTA_KEY)
        if not text:
            return None
        limit, remaining, reset_at = (int(part) for part in text.split())
        return Quota(limit, remaining, reset_at)

    # --- what the console shows ------------------------------------------------------

    def listing(self, limit: int = 20) -> list[OutboxRow]:
        """The newest messages, newest first."""
        return self.table.listing(limit)

    def counts(self) -> dict[str, int]:
        """Messages per state (and those kept in memory while the database refuses them)."""
        try:
            counts = self.table.counts()
        except StorageFailure:  # the database cannot be read now: the held ones at least
            counts = {}
        if len(self.held):
            counts["kept in memory"] = len(self.held)
        return counts
