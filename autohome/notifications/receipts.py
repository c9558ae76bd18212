"""What the Pushover sender does beside sending: it follows each emergency's receipt until
someone acknowledges it (or it expires, or it is cancelled), cancels emergencies by tag,
and reads the application's quota at start and once a day.

Receipts are polled, so no public callback URL is needed; Pushover asks for no more than
one poll per receipt every 5 seconds, and a minute apart is plenty for a person.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from autohome.errors import NotifyError
from autohome.logs.tree import get_logger
from autohome.notifications.pushover import PushoverClient, Quota, Sent
from autohome.storage.outbox_table import OutboxTable

log = get_logger("autohome.outbox")

RECEIPT_POLL = timedelta(minutes=1)
LIMITS_EVERY = timedelta(days=1)
LIMITS_RETRY = timedelta(minutes=10)  # the limits could not be read: soon, not tomorrow


def receipt_state(answer: dict[str, Any]) -> str | None:
    """'acknowledged by <user> (<device>) at <UTC time>', 'expired', or None while it waits."""
    if answer.get("acknowledged"):
        when = datetime.fromtimestamp(int(answer.get("acknowledged_at") or 0), timezone.utc)
        device = answer.get("acknowledged_by_device")
        return (f"acknowledged by {answer.get('acknowledged_by') or 'someone'}"
                f"{f' ({device})' if device else ''} at {when.isoformat(timespec='seconds')}")
    if answer.get("expired"):
        return "expired, not acknowledged"
    return None


class PushoverUpkeep:
    """Receipts followed, cancels sent, the quota read; called from the Pushover sender."""

    def __init__(self, table: OutboxTable, client: PushoverClient,
                 remember_quota: Callable[[Quota | None], None]) -> None:
        self.table = table
        self.client = client
        self.remember_quota = remember_quota
        self._next_poll: datetime | None = None
        self._next_limits: datetime | None = None

    def due(self, now: datetime) -> datetime:
        """Do what is due; return when something is due next."""
        if self._next_limits is None or now >= self._next_limits:
            self._next_limits = now + self._read_limits()
        waiting = self.table.waiting_receipts()
        if waiting and (self._next_poll is None or now >= self._next_poll):
            self._next_poll = now + RECEIPT_POLL
            for row in waiting:
                self._follow(row.id, row.sender, row.receipt or "")
        elif not waiting:
            self._next_poll = None
        return min(filter(None, (self._next_limits, self._next_poll)))

    def _read_limits(self) -> timedelta:
        try:
            quota = self.client.limits()
        except NotifyError as exc:
            log.info("Pushover's limits could not be read (%s); trying again in 10 minutes", exc.reason)
            return LIMITS_RETRY
        self.remember_quota(quota)
        if quota is not None:
            log.info("Pushover quota: %d of %d messages left this month", quota.remaining, quota.limit)
        return LIMITS_EVERY

    def _follow(self, row_id: int, sender: str, receipt: str) -> None:
        try:
            answer = self.client.receipt(receipt)
        except NotifyError as exc:
            if exc.is_final:  # an unknown receipt: nothing more to learn
                self.table.update(row_id, receipt_state=f"unknown to Pushover: {exc.reason}")
            return
        state = receipt_state(answer)
        if state is not None:
            self.table.update(row_id, receipt_state=state)
            log.info("emergency notification %d from %s %s", row_id, sender, state)

    def cancel(self, tag: str) -> Sent:
        """Stop every emergency tagged `tag`; mark the receipts still waiting as cancelled."""
        self.client.cancel_by_tag(tag)
        for row in self.table.waiting_receipts():
            if row.fields.get("tags") == tag:
                self.table.update(row.id, receipt_state="cancelled: the module works again")
        log.info("emergency notifications tagged %s cancelled", tag)
        return Sent("")
