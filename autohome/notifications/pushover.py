"""Pushover's Message API: checking a message against its rules, and posting it."""

from __future__ import annotations

import re
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
MAX_ATTACHMENT_BYTES = 5_242_880  # Pushover's limit for one attachment, 5 MB
_DEVICES = re.compile(r"[A-Za-z0-9_-]{1,25}(,[A-Za-z0-9_-]{1,25})*")
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
    html: int | None = None  # 1: the message is HTML
    monospace: int | None = None  # 1: shown in a fixed-width font
    ttl: int | None = None  # seconds until the phone deletes it
    device: str | None = None  # one of the user's devices (or a comma-separated list)
    tags: str | None = None  # an emergency's tags: AutoHome cancels it by tag on recovery

    def form(self) -> dict[str, str]:
        """The optional fields that are set, as form values."""
        return {key: str(value) for key, value in self._asdict().items() if value is not None}

    @classmethod
    def from_form(cls, values: dict[str, Any]) -> Message:
        """A message back from its stored fields."""
        kept = {k: v for k, v in values.items() if k in cls._fields}
        for number in ("priority", "retry", "expire", "timestamp", "html", "monospace", "ttl"):
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
    html: bool = False,
    monospace: bool = False,
    ttl: int | None = None,
    device: str | None = None,
    tags: str | None = None,
    warn: Callable[[str], None] = log.warning,
) -> Message:
    """Check a message against Pushover's rules; cut over-long text with a warning.

    Raises ValueError for what cannot be fixed by cutting (blank text, bad priority).
    """
    if html and monospace:
        raise ValueError("html and monospace cannot both be set: pick one")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise ValueError(f"ttl {ttl!r} is not allowed: use a number of seconds above 0")
    if device is not None and not (isinstance(device, str) and _DEVICES.fullmatch(device)):
        raise ValueError(f"device {device!r} is not allowed: use a device name of up to 25 letters, "
                         "digits, _ or -, or a comma-separated list of them")
    text = "" if message is None else str(message)
    if not text.strip():
        raise ValueError("message cannot be blank")
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in (-2, -1, 0, 1, 2):
        raise ValueError(f"priority {priority!r} is not allowed: use -2, -1, 0, 1 or 2")
    if priority == 2:
        retry = 60 if retry is None else retry
        expire = 3600 if expire is None else expire
        for name, value in (("retry", retry), ("expire", expire)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} {value!r} is not allowed: use a whole number of seconds")
        if retry < 30:
            raise ValueError(f"retry {retry} is too short: emergency messages need retry >= 30")
        if not 0 < expire <= 10800:
            raise ValueError(f"expire {expire} is not allowed: use 1 to 10800 seconds")
    else:
        retry = expire = None
    return Message(message=_fit("message", text, warn) or "", title=_fit("title", title, warn),
                   url=_fit("url", url, warn), url_title=_fit("url_title", url_title, warn),
                   priority=priority, sound=sound, retry=retry, expire=expire,
                   html=1 if html else None, monospace=1 if monospace else None, ttl=ttl,
                   device=device, tags=tags if priority == 2 else None)


def _fit(key: str, value: str | None, warn: Callable[[str], None]) -> str | None:
    """The text cut to Pushover's limit for `key`, with a warning when it had to be."""
    limit = LIMITS[key]
    if value is not None and len(value) > limit:
        warn(f"{key} is {len(value)} characters, Pushover allows {limit}: cut to fit")
        return value[: limit - 1] + "…"
    return value


Attachment = tuple[str, bytes, str]  # file name, its bytes, its MIME type


class Sent(NamedTuple):
    """What Pushover answered to a message it took."""

    request: str
    receipt: str | None = None  # an emergency's: followed until acknowledged


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

    def send(self, message: Message, attachment: Attachment | None = None) -> Sent:
        """Deliver one message (with an image, multipart); return Pushover's request id and,
        for an emergency, its receipt."""
        data = {"token": self.token, "user": self.user, **message.form()}
        files = None if attachment is None else {"attachment": attachment}
        body = self._call("POST", self.api_url, data=data, files=files)
        return Sent(str(body.get("request", "")), body.get("receipt"))

    def receipt(self, receipt: str) -> dict[str, Any]:
        """An emergency's receipt: acknowledged (by whom, when), expired, ..."""
        return self._call("GET", f"{self._base}/receipts/{receipt}.json", params={"token": self.token})

    def cancel_by_tag(self, tag: str) -> None:
        """Stop the retries of every emergency that carries `tag`."""
        self._call("POST", f"{self._base}/receipts/cancel_by_tag/{tag}.json", data={"token": self.token})

    def limits(self) -> Quota | None:
        """The application's monthly quota, asked for (at start and once a day)."""
        body = self._call("GET", f"{self._base}/apps/limits.json", params={"token": self.token})
        try:
            self.quota = Quota(int(body["limit"]), int(body["remaining"]), int(body["reset"]))
        except (KeyError, TypeError, ValueError):
            pass
        return self.quota

    @property
    def _base(self) -> str:
        """https://api.pushover.net/1 from the messages URL."""
        return self.api_url.rsplit("/", 1)[0]

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        requests = self._requests
        try:
            response = self.session.request(method, url, timeout=self.timeout_s, **kwargs)
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
        return body

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.session.close()
