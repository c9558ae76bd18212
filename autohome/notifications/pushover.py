"""Pushover's Message API: checking a message against its rules, and posting it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from autohome.errors import NotifyError
from autohome.logs.tree import get_logger

if TYPE_CHECKING:  # requests is imported when a client is made: most start-ups never need it
    import requests

log = get_logger("autohome.notify")

REQUEST_TIMEOUT_S = 10.0
# Pushover's documented limits, in characters.
LIMITS = {"message": 1024, "title": 250, "url": 512, "url_title": 100}
NOT_CONFIGURED = "Pushover is not configured: set PUSHOVER_TOKEN and PUSHOVER_USER in .env"


class Message(NamedTuple):
    """One Pushover message, already checked against the API's limits."""

    message: str
    title: str | None = None
    priority: int = 0
    url: str | None = None
    url_title: str | None = None
    sound: str | None = None
    retry: int | None = None
    expire: int | None = None
    timestamp: int | None = None  # Unix time the message is about: when a module queued it

    def form(self) -> dict[str, str]:
        """The optional fields that are set, as form values."""
        return {key: str(value) for key, value in self._asdict().items() if value is not None}

    @classmethod
    def from_form(cls, values: dict[str, Any]) -> Message:
        """A message back from its stored fields."""
        kept = {k: v for k, v in values.items() if k in cls._fields}
        for number in ("priority", "retry", "expire", "timestamp"):
            if kept.get(number) is not None:
                kept[number] = int(kept[number])
        return cls(**kept)


def build_message(
    message: object,
    title: str | None = None,
    priority: int = 0,
    url: str | None = None,
    url_title: str | None = None,
    sound: str | None = None,
    retry: int | None = None,
    expire: int | None = None,
    warn: Callable[[str], None] = log.warning,
) -> Message:
    """Check a message against Pushover's rules; cut over-long text with a warning.

    Raises ValueError for what cannot be fixed by cutting (blank text, bad priority).
    """
    text = "" if message is None else str(message)
    if not text.strip():
        raise ValueError("message cannot be blank")
    if isinstance(priority, bool) or priority not in (-2, -1, 0, 1, 2):
        raise ValueError(f"priority {priority!r} is not allowed: use -2, -1, 0, 1 or 2")
    if priority == 2:
        retry = 60 if retry is None else retry
        expire = 3600 if expire is None else expire
        if retry < 30:
            raise ValueError(f"retry {retry} is too short: emergency messages need retry >= 30")
        if not 0 < expire <= 10800:
            raise ValueError(f"expire {expire} is not allowed: use 1 to 10800 seconds")
    else:
        retry = expire = None
    return Message(message=_fit("message", text, warn) or "", title=_fit("title", title, warn),
                   url=_fit("url", url, warn), url_title=_fit("url_title", url_title, warn),
                   priority=priority, sound=sound, retry=retry, expire=expire)


def _fit(key: str, value: str | None, warn: Callable[[str], None]) -> str | None:
    """The text cut to Pushover's limit for `key`, with a warning when it had to be."""
    limit = LIMITS[key]
    if value is not None and len(value) > limit:
        warn(f"{key} is {len(value)} characters, Pushover allows {limit}: cut to fit")
        return value[: limit - 1] + "…"
    return value


class Quota(NamedTuple):
    """The monthly message quota from Pushover's X-Limit-App-* headers."""

    limit: int
    remaining: int
    reset_at: int  # Unix time


def _quota(headers: requests.structures.CaseInsensitiveDict[str]) -> Quota | None:
    try:
        return Quota(
            limit=int(headers["X-Limit-App-Limit"]),
            remaining=int(headers["X-Limit-App-Remaining"]),
            reset_at=int(headers["X-Limit-App-Reset"]),
        )
    except (KeyError, ValueError):
        return None


def _errors_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(str(error) for error in errors)
    return str(body)[:200]


class PushoverClient:
    """Posts messages to Pushover; `send` raises NotifyError with the status and the API's text."""

    def __init__(
        self,
        token: str,
        user: str,
        api_url: str,
        session: requests.Session | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.token = token
        self.user = user
        self.api_url = api_url
        self.timeout_s = timeout_s
        self.quota: Quota | None = None
        import requests
        from requests.adapters import HTTPAdapter

        self._requests = requests
        if session is None:
            # Pushover asks for at most two connections, kept alive.
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2, pool_block=True)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self.session = session

    def send(self, message: Message) -> str:
        """Deliver one message; return Pushover's request id."""
        data = {"token": self.token, "user": self.user, **message.form()}
        requests = self._requests
        try:
            response = self.session.post(self.api_url, data=data, timeout=self.timeout_s)
        except requests.Timeout as exc:
            raise NotifyError(f"no answer from Pushover within {self.timeout_s:g}s") from exc
        except requests.RequestException as exc:
            raise NotifyError(f"cannot reach Pushover at {self.api_url}: {exc}") from exc
        self.quota = _quota(response.headers) or self.quota
        if response.status_code != 200:
            raise NotifyError(
                f"Pushover answered {response.status_code}: {_errors_text(response)}",
                status=response.status_code,
                body=response.text,
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict) or body.get("status") != 1:
            raise NotifyError(
                f"Pushover refused the message: {_errors_text(response)}",
                status=response.status_code,
                body=response.text,
            )
        return str(body.get("request", ""))

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.session.close()
