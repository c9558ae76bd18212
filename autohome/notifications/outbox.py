"""The outbox: every notification is written to the database first, once per channel, then
delivered by one sender thread per channel, in order, exactly once as far as each channel's
API allows. One slow or failing channel never holds up another.

`notify()` never waits on the network. A 4xx is final; a 5xx, a timeout or no network
is retried with growing pauses from 5 s; a 429 waits for the quota's reset time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from autohome.clock import Clock, monotonic_s
from autohome.durations import format_duration
from autohome.errors import NotifyError
from autohome.logs.tree import get_logger
from autohome.notifications.channels import PUSHOVER, Channel, PushoverChannel
from autohome.notifications.held import HeldMessage, HeldMessages
from autohome.notifications.pushover import NOT_CONFIGURED, Attachment, Message, Quota
from autohome.notifications.receipts import PushoverUpkeep
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
IDLE_WAKE = timedelta(days=1)  # a sender with nothing to do still looks once a day


def retry_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, ... after the 1st, 2nd, 3rd failed attempt; at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)


class Outbox:
    """Queues messages in the database and delivers them, one sender thread per channel."""

    def __init__(self, db: Database, channels: Sequence[Channel], clock: Clock,
                 is_test_mode: bool = False) -> None:
        self.table = OutboxTable(db)
        self.held = HeldMessages(db)  # what the database refused (held.py)
        self.is_test_mode = is_test_mode  # virtual time must not ring the phone: keep, never send
        self.names = [channel.name for channel in channels]  # configured, sending or not
        self.channels = {} if is_test_mode else {channel.name: channel for channel in channels}
        pushover = self.channels.get(PUSHOVER)
        self.client = pushover.client if isinstance(pushover, PushoverChannel) else None
        self.clock = clock
        self._alarms = {name: clock.alarm() for name in self.channels}  # raised by a new message, stop()
        self._next_prune: datetime | None = None
        self._stopping = False
        self._finishing = False  # shutting down: send what is due now, wait for no retry
        self._threads: list[threading.Thread] = []
        self.quota = self._stored_quota()
        self.upkeep = (None if self.client is None
                       else PushoverUpkeep(self.table, self.client, self._set_quota))

    @property
    def can_send(self) -> bool:
        """Whether any channel delivers (not in test mode, at least one configured)."""
        return bool(self.channels)

    # --- queueing (any thread) -------------------------------------------------------

    def queue(self, message: Message, sender: str, to: Sequence[str] | None = None,
              hold_until: datetime | None = None, attachment: Attachment | None = None) -> int:
        """Store a checked message for delivery on each channel (or those in `to`); return
        the first row's id. Never touches the network."""
        state = (Delivery.TEST if self.is_test_mode else Delivery.PENDING if self.channels
                 else Delivery.UNDELIVERABLE)
        channels = list(to or self.names) or [PUSHOVER]
        created = self.clock.now()
        if message.timestamp is None:  # shown on the phone as when it happened, however late it arrives
            message = message._replace(timestamp=int(created.timestamp()))
        try:
            message_id = self.table.add(created, sender, message.form(), state, channels, hold_until,
                                        attachment)
        except (StorageFailure, OSError) as exc:  # a full disk: kept in memory, sent from there
            for channel in channels:
                self.held.hold(HeldMessage(created, sender, message.form(), state, channel, attachment))
            log.warning("notification from %s kept in memory: the state database cannot take it (%s); it "
                        "is %s, and stored once the database can", sender, exc,
                        "sent from there" if state is Delivery.PENDING else "kept")
            self.wake()
            return 0
        if self.is_test_mode:
            log.info("notification %d from %s not sent: test mode sends nothing (-t --notify does) "
                     "(message: %r)", message_id, sender, message.message)
        elif not self.channels:
            log.warning("notification %d from %s kept as undeliverable: %s (message: %r)",
                        message_id, sender, NOT_CONFIGURED, message.message)
        elif hold_until is not None:
            log.info("notification %d from %s held for quiet hours until %s", message_id, sender,
                     hold_until.isoformat(timespec="minutes"))
        if state is not Delivery.PENDING and message_id % 1000 == 0 and self._done() > KEEP_DONE:
            self._next_prune = None  # a flood of kept messages: prune now, not tomorrow
            self.prune_if_due(created)
        self.wake()
        return message_id

    def queue_cancel(self, tag: str) -> None:
        """Queue the cancel of Pushover emergencies tagged `tag`: behind them, so it never
        overtakes the emergency it cancels."""
        state = Delivery.TEST if self.is_test_mode else Delivery.PENDING
        try:
            self.table.add(self.clock.now(), "autohome", {"message": f"(cancel the emergencies tagged {tag})",
                                                         "cancel_tag": tag}, state, [PUSHOVER])
        except (StorageFailure, OSError):
            log.warning("the emergencies tagged %s cannot be cancelled: the state database cannot take it; "
                        "they stop at their expiry", tag)
            return
        self.wake()

    def _done(self) -> int:
        """How many messages are done with (kept, not to be sent)."""
        waiting = (Delivery.PENDING, Delivery.SENDING)
        return sum(count for state, count in self.table.counts().items() if state not in waiting)

    def wake(self) -> None:
        """Have the senders look at the outbox now."""
        for alarm in self._alarms.values():
            alarm.raise_()

    def resend(self, message_id: int) -> str:
        """Queue a failed, uncertain or undeliverable message again; say what happened."""
        row = self.table.get(message_id)
        if row is None:
            return f"no notification {message_id}, see 'notifications'"
        if self.is_test_mode:
            return f"notification {message_id} is kept: test mode sends nothing (-t --notify does)"
        if row.channel not in self.channels:
            why = NOT_CONFIGURED if not self.channels else f"its channel {row.channel} is not configured"
            return f"notification {message_id} is kept: {why}"
        if row.state in (Delivery.PENDING, Delivery.SENDING, Delivery.SENT):
            return (f"notification {message_id} is {row.state}: only a failed, uncertain or "
                    "undeliverable one is sent again")
        self.table.update(message_id, state=Delivery.PENDING, attempts=0, next_attempt=self.clock.now(),
                          last_error=None)
        log.info("notification %d from %s queued again by hand", message_id, row.sender)
        self.wake()
        return f"notification {message_id} queued again"

    def drop(self, message_id: int) -> str:
        """Give up on a pending message (one its channel keeps refusing holds up the messages
        after it): it becomes `failed`, and `resend` can queue it again; say what happened."""
        row = self.table.get(message_id)
        if row is None:
            return f"no notification {message_id}, see 'notifications'"
        if not self.table.give_up(message_id, "given up by hand (notifications drop)"):
            current = self.table.get(message_id) or row
            return f"notification {message_id} is {current.state}: only a pending one can be dropped"
        log.info("notification %d from %s to %s given up by hand", message_id, row.sender, row.channel)
        self.wake()  # the next message on its channel goes now, not at this one's retry time
        return f"notification {message_id} dropped: the ones after it on {row.channel} go on"

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

    # --- the senders ------------------------------------------------------------------

    def start(self) -> None:
        """Recover what the last run left mid-send or undeliverable; start one sender thread
        per channel."""
        uncertain, revived = self.table.recover(can_send=next(iter(self.channels), ""))
        if uncertain:
            log.warning("%d notification(s) were being sent when AutoHome stopped; they are marked "
                        "uncertain and not sent again (the channel may or may not have them)", uncertain)
        if revived:
            log.info("a channel is configured now: %d kept notification(s) will be sent", revived)
        for name in self.channels:
            thread = threading.Thread(target=self._run, args=(name,), name=f"notify-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is due now, within `timeout_s`, and stop the senders; messages waiting
        for a retry, and whatever the time left does not reach, stay queued for next time."""
        self._finishing = True
        self.wake()
        ends = monotonic_s() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, ends - monotonic_s()))
        self._stopping = True  # past the time: stop after the message in hand
        for channel in self.channels.values():
            channel.close()

    def _run(self, name: str) -> None:
        # Retries wait on the daemon's clock: real time, suspended time and test mode's
        # virtual time alike, so nothing else has to poke the sender.
        alarm, prunes = self._alarms[name], name == next(iter(self.channels))
        channel = self.channels[name]
        while not self._stopping:
            alarm.reset()
            try:
                now = self.clock.now()
                dues = [self.deliver_due(now, name),
                        self.held.deliver_due(channel, now, self.clock.now, retry_delay)]
                if prunes:
                    dues.append(self.prune_if_due(now))
                if name == PUSHOVER and self.upkeep is not None and not self._finishing:
                    dues.append(self.upkeep.due(now))
                next_due = min(filter(None, dues), default=now + IDLE_WAKE)
            except Exception:  # the database, say: the messages stay queued
                log.exception("the notification sender for %s failed; trying again in %s", name,
                              format_duration(SENDER_PAUSE))
                next_due = self.clock.now() + SENDER_PAUSE
            if self._finishing:
                return
            self.clock.wait_until(next_due, alarm)

    def deliver_due(self, now: datetime, channel: str = PUSHOVER) -> datetime | None:
        """Send a channel's queued messages in order while they are due; return when to look
        again (None: nothing waits)."""
        while not self._stopping:
            head = self.table.head(channel, now)
            if head is None:
                return self.table.next_release(channel, now)
            if head.next_attempt is not None and head.next_attempt > now:
                release = self.table.next_release(channel, now)
                return min(head.next_attempt, release) if release else head.next_attempt
            self._attempt(head, now)
        return None

    def _attempt(self, row: OutboxRow, now: datetime) -> None:
        channel = self.channels[row.channel]
        message = Message.from_form(row.fields)
        attachment = self.table.attachment(row.attachment_id) if row.attachment_id else None
        if row.attempts == 0 and (dropped := channel.cannot_carry(message, attachment)):
            log.info("notification %d from %s goes to %s without %s: the channel cannot carry %s", row.id,
                     row.sender, row.channel, ", ".join(dropped), "it" if len(dropped) == 1 else "them")
        # Recorded before the request: a crash from here on leaves it 'sending', which the
        # next start marks uncertain instead of sending it twice.
        self.table.update(row.id, state=Delivery.SENDING, attempts=row.attempts + 1)
        try:
            if "cancel_tag" in row.fields and self.upkeep is not None:
                sent = self.upkeep.cancel(row.fields["cancel_tag"])
            else:
                sent = channel.send(message, attachment)
        except NotifyError as exc:
            self._remember_quota()
            self._failed(row, now, exc)
            return
        self._remember_quota()
        self.table.update(row.id, state=Delivery.SENT, sent_at=self.clock.now(), last_error=None,
                          receipt=sent.receipt, receipt_state="waiting" if sent.receipt else None)
        if row.channel == PUSHOVER:
            log.info("notification %d from %s sent (request %s)", row.id, row.sender, sent.request)
        else:
            log.info("notification %d from %s sent to %s", row.id, row.sender, row.channel)

    def _failed(self, row: OutboxRow, now: datetime, exc: NotifyError) -> None:
        attempts = row.attempts + 1
        if exc.is_final:
            self.table.update(row.id, state=Delivery.FAILED, last_error=exc.reason)
            log.error("notification %d from %s refused, not retried: %s", row.id, row.sender, exc.reason)
            return
        if exc.status == 429 and row.channel == PUSHOVER:
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
        self._set_quota(self.client.quota if self.client else None)

    def _set_quota(self, quota: Quota | None) -> None:
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

    def waiting_by_channel(self) -> dict[str, int]:
        """Messages still to send on each configured channel (0 for one that is up to date)."""
        try:
            waiting = self.table.waiting_by_channel()
        except StorageFailure:
            waiting = {}
        return {name: waiting.get(name, 0) for name in self.names} if self.names else waiting

    def retrying_by_channel(self) -> dict[str, str]:
        """The channels whose messages wait for a retry, with the error that holds them up."""
        try:
            return self.table.retrying_by_channel()
        except StorageFailure:
            return {}

    def counts(self) -> dict[str, int]:
        """Messages per state (and those kept in memory while the database refuses them)."""
        try:
            counts = self.table.counts()
        except StorageFailure:  # the database cannot be read now: the held ones at least
            counts = {}
        if len(self.held):
            counts["kept in memory"] = len(self.held)
        return counts
