"""The `notify` callable each module is handed: it checks a message, queues it in the
outbox and returns at once; it never raises into the module. Quiet hours and the hourly
limit act here, as the message is queued."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from autohome.logs.tree import get_logger
from autohome.notifications.alerts import AlertPolicy
from autohome.notifications.damping import Floodgate, QuietHours
from autohome.notifications.outbox import Outbox
from autohome.notifications.pushover import MAX_ATTACHMENT_BYTES, NOT_CONFIGURED, Attachment, build_message

log = get_logger("autohome.main")
AUTOHOME = "autohome"  # the sender of AutoHome's own alerts
DEFAULT_MAX_PER_HOUR = 20
_IMAGE_TYPES = {b"\x89PNG": ("png", "image/png"), b"\xff\xd8\xff": ("jpg", "image/jpeg"),
                b"GIF8": ("gif", "image/gif"), b"RIFF": ("webp", "image/webp")}


class Notifier:
    """Hands each module a `notify` callable that checks, queues and returns at once, and
    sends AutoHome's own alerts (unless AUTOHOME_NOTIFY_ON_FAILURE is off)."""

    def __init__(self, outbox: Outbox | None, send_alerts: bool = True, quiet: QuietHours | None = None,
                 max_per_hour: int = DEFAULT_MAX_PER_HOUR) -> None:
        self.outbox = outbox
        self.send_alerts = send_alerts
        self.quiet = quiet
        self.floodgate = Floodgate(max_per_hour)
        self.alerts = AlertPolicy(self._alert, self.cancel_emergency,
                                  outbox.table if outbox is not None else None)

    def alert(self, message: str, title: str) -> None:
        """AutoHome's own notice about trouble: sent on changes only, never on every run."""
        self._alert(message, title)

    def _alert(self, message: str, title: str, priority: int = 0, tags: str | None = None) -> None:
        if self.send_alerts:
            self.send(log, AUTOHOME, message, title=title, priority=priority, tags=tags)

    def cancel_emergency(self, tag: str) -> None:
        """Stop the repeats of the Pushover emergencies tagged `tag` (queued behind them)."""
        if self.outbox is not None and "pushover" in self.outbox.names:
            self.outbox.queue_cancel(tag)

    def for_module(self, module_log: logging.Logger, sender: str | None = None) -> Callable[..., bool]:
        """`notify(message, title=None, priority=0, url=None, url_title=None, sound=None,
        retry=None, expire=None, html=False, monospace=False, ttl=None, device=None,
        attachment=None, to=None) -> bool`: True once queued (or folded into a summary),
        False if the message is invalid."""
        sender = sender or module_log.name.rsplit(".", 1)[-1]

        def notify(message: object, title: str | None = None, priority: int = 0, url: str | None = None,
                   url_title: str | None = None, sound: str | None = None, retry: int | None = None,
                   expire: int | None = None, html: bool = False, monospace: bool = False,
                   ttl: int | None = None, device: str | None = None,
                   attachment: str | Path | bytes | None = None, to: Sequence[str] | None = None) -> bool:
            return self.send(module_log, sender, message, title=title, priority=priority, url=url,
                             url_title=url_title, sound=sound, retry=retry, expire=expire, html=html,
                             monospace=monospace, ttl=ttl, device=device, attachment=attachment, to=to,
                             tags=f"{sender}" if priority == 2 else None)

        return notify

    def send(self, sender_log: logging.Logger, sender: str, message: object, to: Sequence[str] | None = None,
             attachment: str | Path | bytes | None = None, **fields: Any) -> bool:
        """Check a message and queue it; log and return False if it is invalid."""
        try:
            checked = build_message(message, warn=sender_log.warning, **fields)
            channels = self._channels(to)
            image = None if attachment is None else read_attachment(attachment)
        except (ValueError, TypeError, OSError) as exc:
            sender_log.error("notification not queued, the message is invalid: %s", exc)
            return False
        if self.outbox is None:
            sender_log.warning("notification not sent: %s (message: %r)", NOT_CONFIGURED, checked.message)
            return False
        now = self.outbox.clock.now()
        if sender != AUTOHOME and not self.floodgate.admit(sender, checked.message, now):
            sender_log.info("notification folded into a summary: %s sends more than %d an hour, or "
                            "the same text again within 10 minutes", sender, self.floodgate.max_per_hour)
            return True
        hold_until = self.quiet.release(now) if self.quiet is not None and checked.priority <= 0 else None
        try:
            message_id = self.outbox.queue(checked, sender, channels, hold_until, image)
        except Exception:  # noqa: BLE001 - notify() never raises into a module: a full disk, say
            sender_log.exception("notification not queued: the state database cannot take it "
                                 "(message: %r)", checked.message)
            return False
        if message_id:
            sender_log.info("notification %d queued", message_id)
        return True

    def tick(self, now: datetime) -> None:
        """Queue the summaries of what the hourly limit and the repeat folding held back."""
        for folded in self.floodgate.due(now):
            self.send(log, folded.sender, folded.text)

    def _channels(self, to: str | Sequence[str] | None) -> list[str] | None:
        return pick_channels(to, self.outbox.names if self.outbox is not None else [])


def pick_channels(to: str | Sequence[str] | None, known: Sequence[str]) -> list[str] | None:
    """The channels `notify(..., to=...)` names (None: every one). Raises ValueError for a
    name that is not among `known`."""
    if to is None:
        return None
    names = [to] if isinstance(to, str) else list(to)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"to={names!r}: no channel named {', '.join(unknown) or '(none given)'}; "
                         f"the channels are {', '.join(known) or 'none'} "
                         "(AUTOHOME_NOTIFY_URLS names them: name=url)")
    return names


def read_attachment(value: str | Path | bytes) -> Attachment:
    """(file name, bytes, MIME type) of an image given as a path or as bytes; the size is
    checked before reading a file. Raises ValueError or OSError."""
    import mimetypes

    if isinstance(value, bytes | bytearray):
        data, name = bytes(value), ""
    elif isinstance(value, str | Path):
        path = Path(value)
        size = path.stat().st_size
        if size > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachment {path} is {size:,} bytes; Pushover takes at most "
                             f"{MAX_ATTACHMENT_BYTES:,} (5 MB): make it smaller")
        data, name = path.read_bytes(), path.name
    else:
        raise TypeError(f"attachment {value!r} is not allowed: give a file's path or the image's bytes")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ValueError(f"attachment is {len(data):,} bytes; Pushover takes at most "
                         f"{MAX_ATTACHMENT_BYTES:,} (5 MB): make it smaller")
    kind = next((kind for magic, kind in _IMAGE_TYPES.items() if data.startswith(magic)), None)
    mime = mimetypes.guess_type(name)[0] if name else None
    mime = mime or (kind[1] if kind else "application/octet-stream")
    return name or f"attachment.{kind[0] if kind else 'bin'}", data, mime
