"""The status page's sessions: a cookie naming a session, the token every POST must carry,
and, with a password, whether the session logged in.

Only a login makes a session that is kept (with a password set, nothing else can). Without a
password a session is kept nowhere: its token is derived from its id with a key of this
process (HMAC), so no number of cookie-less requests (a web page's <img> tags can send
hundreds) can push the owner's session out."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import NamedTuple

COOKIE = "autohome_session"
MAX_SESSIONS = 256  # logged-in sessions kept; the least recently used is forgotten first
_ID = re.compile(r"[A-Za-z0-9_-]{32}")  # what secrets.token_urlsafe(24) makes


class Session(NamedTuple):
    id: str
    token: str  # in every form; checked on every POST
    is_logged_in: bool


class Sessions:
    """Sessions by id, bounded; safe from waitress's threads."""

    def __init__(self, password: str) -> None:
        self.password = password.encode("utf-8")
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # logged in: made at login only
        self._lock = threading.Lock()
        self._key: bytes | None = None  # for the tokens of sessions kept nowhere (no password)

    @property
    def needs_login(self) -> bool:
        return bool(self.password)

    def find(self, cookie_header: str) -> Session | None:
        """The session the request's cookie names, if it is one of ours."""
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name != COOKIE:
                continue
            if not self.needs_login:
                return Session(value, self._token(value), False) if _ID.fullmatch(value) else None
            with self._lock:
                session = self._sessions.get(value)
                if session is not None:
                    self._sessions.move_to_end(value)
                return session
        return None

    def new(self, is_logged_in: bool = False) -> Session:
        """A fresh session: kept if it logged in (a new id at login, so an id seen before login
        is worth nothing), else kept nowhere."""
        import secrets  # hashlib and OpenSSL: loaded at the first request, not at start-up

        session_id = secrets.token_urlsafe(24)
        if not is_logged_in:
            return Session(session_id, self._token(session_id), False)
        session = Session(session_id, secrets.token_urlsafe(24), True)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def _token(self, session_id: str) -> str:
        import hashlib
        import hmac
        import secrets

        if self._key is None:
            self._key = secrets.token_bytes(32)
        return hmac.new(self._key, session_id.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def end(self, session: Session) -> None:
        """Log out."""
        with self._lock:
            self._sessions.pop(session.id, None)

    def is_password(self, given: str) -> bool:
        """Compared in constant time."""
        import hmac

        return bool(self.password) and hmac.compare_digest(given.encode("utf-8"), self.password)

    @staticmethod
    def has_token(session: Session | None, given: str) -> bool:
        """Whether a POST carries its session's token."""
        import hmac

        return session is not None and bool(given) and hmac.compare_digest(given, session.token)


def cookie(session: Session) -> str:
    """The Set-Cookie value: not readable by scripts, never sent by another site's page."""
    return f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict"
