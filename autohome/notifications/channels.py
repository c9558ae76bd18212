"""Where notifications go: Pushover (native) and any service Apprise knows, by URL.

Each channel sends one message at a time and raises NotifyError with an HTTP status where
it knows one, so the outbox treats every channel alike: a 4xx is final, the rest is
retried. `apprise` is an optional extra, imported only when AUTOHOME_NOTIFY_URLS is set.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Protocol

from autohome.config import Config
from autohome.errors import ConfigError, NotifyError
from autohome.notifications.pushover import Attachment, Message, PushoverClient, Sent

PUSHOVER = "pushover"
APPRISE_MISSING = ("AUTOHOME_NOTIFY_URLS is set but Apprise is not installed: "
                   "pip install 'autohome[channels]' (or pip install apprise)")
_STATUS = re.compile(r"error=(\d{3})")


class Channel(Protocol):
    """One place a message goes."""

    name: str

    def send(self, message: Message, attachment: Attachment | None) -> Sent:
        """Deliver one message; raise NotifyError (with the HTTP status where known)."""
        ...

    def cannot_carry(self, message: Message, attachment: Attachment | None) -> list[str]:
        """The fields of `message` this channel drops."""
        ...

    def close(self) -> None:
        """Let go of connections."""
        ...


class PushoverChannel:
    """Pushover, spoken natively: every field, receipts, cancels and the quota."""

    name = PUSHOVER

    def __init__(self, client: PushoverClient) -> None:
        self.client = client

    def send(self, message: Message, attachment: Attachment | None) -> Sent:
        """Post the message (multipart with its attachment)."""
        return self.client.send(message, attachment)

    def cannot_carry(self, message: Message, attachment: Attachment | None) -> list[str]:
        """Pushover carries every field AutoHome knows."""
        return []

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.client.close()


class AppriseChannel:
    """A service reached through Apprise: one URL, one plugin, one message at a time."""

    def __init__(self, name: str, url: str, pace_s: float | None = None) -> None:
        try:
            import apprise
        except ImportError:
            raise ConfigError(APPRISE_MISSING) from None
        self.name = name
        self.url = url
        self._log = logging.getLogger("apprise")
        self._log.propagate = False  # its lines are said once, by the outbox, with the message's id
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ConfigError(f"AUTOHOME_NOTIFY_URLS: Apprise cannot use {name}={_private(url)}: check the "
                              "URL against https://github.com/caronc/apprise/wiki")
        if pace_s is not None:  # Apprise waits this long between two requests of one service
            plugin.request_rate_per_sec = pace_s
        self._plugin: Any = plugin
        self._apprise = apprise

    def send(self, message: Message, attachment: Attachment | None) -> Sent:
        """Hand the message to Apprise; its log line gives the HTTP status of a refusal."""
        apprise = self._apprise
        body = message.message if message.url is None else f"{message.message}\n{message.url}"
        body_format = apprise.NotifyFormat.HTML if message.html else apprise.NotifyFormat.TEXT
        said = _Said(threading.get_ident())
        self._log.addHandler(said)
        try:
            attach = None
            if attachment is not None and self._plugin.attachment_support:
                from apprise.attachment.memory import AttachMemory

                name, data, mime = attachment
                attach = apprise.AppriseAttachment(AttachMemory(content=data, name=name, mimetype=mime))
            sent = self._plugin.notify(body=body, title=message.title or "", attach=attach,
                                       body_format=body_format)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed delivery, retried
            raise NotifyError(f"{self.name}: Apprise raised {type(exc).__name__}: {exc}") from exc
        finally:
            self._log.removeHandler(said)
        if not sent:
            status = _STATUS.search(said.text)
            raise NotifyError(f"{self.name}: {said.text or 'Apprise could not deliver it'}",
                              status=int(status.group(1)) if status else None)
        return Sent("")

    def cannot_carry(self, message: Message, attachment: Attachment | None) -> list[str]:
        """Apprise carries a title, the text (HTML too) and, for some services, an image."""
        dropped = [field for field in ("priority", "sound", "url_title", "device", "ttl", "monospace")
                   if getattr(message, field) not in (None, 0)]
        if attachment is not None and not self._plugin.attachment_support:
            dropped.append("attachment")
        return dropped

    def close(self) -> None:
        """Apprise keeps no connection open."""


class _Said(logging.Handler):
    """What Apprise warned about, in one thread, during one send."""

    def __init__(self, thread: int) -> None:
        super().__init__(logging.WARNING)
        self.thread = thread
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "; ".join(self.lines)


def _private(url: str) -> str:
    """The URL without what may be a password or a token after the scheme."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest[:3]}..." if len(rest) > 3 else url


def make_channels(config: Config) -> list[Channel]:
    """Pushover first (when its keys are set), then each of AUTOHOME_NOTIFY_URLS. Raises
    ConfigError for a URL Apprise cannot use, or Apprise missing."""
    channels: list[Channel] = []
    if config.has_pushover:
        client = PushoverClient(config.pushover_token, config.pushover_user, config.pushover_api_url)
        channels.append(PushoverChannel(client))
    channels += [AppriseChannel(name, url, config.notify_pace) for name, url in config.notify_urls]
    return channels
