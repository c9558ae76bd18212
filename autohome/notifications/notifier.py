"""The `notify` callable each module is handed: it checks a message, queues it in the
outbox and returns at once; it never raises into the module."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from autohome.logs.tree import get_logger
from autohome.notifications.outbox import Outbox
from autohome.notifications.pushover import NOT_CONFIGURED, build_message

log = get_logger("autohome.main")


class Notifier:
    """Hands each module a `notify` callable that checks, queues and returns at once, and
    sends AutoHome's own alerts (unless AUTOHOME_NOTIFY_ON_FAILURE is off)."""

    def __init__(self, outbox: Outbox | None, send_alerts: bool = True) -> None:
        self.outbox = outbox
        self.send_alerts = send_alerts

    def alert(self, message: str, title: str) -> None:
        """AutoHome's own notice about trouble: sent on changes only, never on every run."""
        if self.send_alerts:
            self.send(log, "autohome", message, title=title)

    def for_module(self, module_log: logging.Logger, sender: str | None = None) -> Callable[..., bool]:
        """`notify(message, title=None, priority=0, url=None, url_title=None, sound=None,
        retry=None, expire=None) -> bool`: True once queued, False if the message is invalid."""
        sender = sender or module_log.name.rsplit(".", 1)[-1]

        def notify(message: object, title: str | None = None, priority: int = 0, url: str | None = None,
                   url_title: str | None = None, sound: str | None = None, retry: int | None = None,
                   expire: int | None = None) -> bool:
            return self.send(module_log, sender, message, title=title, priority=priority, url=url,
                             url_title=url_title, sound=sound, retry=retry, expire=expire)

        return notify

    def send(self, sender_log: logging.Logger, sender: str, message: object, **fields: Any) -> bool:
        """Check a message and queue it; log and return False if it is invalid."""
        try:
            checked = build_message(message, warn=sender_log.warning, **fields)
        except (ValueError, TypeError) as exc:
            sender_log.error("notification not queued, the message is invalid: %s", exc)
            return False
        if self.outbox is None:
            sender_log.warning("notification not sent: %s (message: %r)", NOT_CONFIGURED, checked.message)
            return False
        try:
            message_id = self.outbox.queue(checked, sender)
        except Exception:  # noqa: BLE001 - notify() never raises into a module: a full disk, say
            sender_log.exception("notification not queued: the state database cannot take it "
                                 "(message: %r)", checked.message)
            return False
        if message_id:
            sender_log.info("notification %d queued", message_id)
        return True
