"""The exceptions AutoHome raises on purpose."""


class AutoHomeError(Exception):
    """Base class for errors AutoHome reports to the user."""


class ConfigError(AutoHomeError):
    """A setting is missing or malformed; the message names the key and the fix."""


class NotifyError(AutoHomeError):
    """Pushover refused a message or could not be reached."""

    def __init__(self, reason: str, status: int | None = None, body: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body

    @property
    def is_final(self) -> bool:
        """A 4xx answer will never succeed on retry (Pushover's own guidance)."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429
