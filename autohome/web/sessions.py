"""The status page's sessions: a cookie naming a session, the token every POST must carry,
and, with a password, whether the session logged in."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

COOKIE = "autohome_session"
MAX_SESSIONS = 256  # the oldest is forgotten first: a stranger cannot fill memory


class Session(NamedTuple):
    id: str
    token: str  # in every form; checked on every POST
    is_logged_in: bool


class Sessions:
    """Sessions by id, bounded; safe from waitress's threads."""

    def __init__(self, password: str) -> None:
        self.password = password.encode("utf-8")
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def needs_login(self) -> bool:
        return bool(self.password)

    def find(self, cookie_header: str) -> Session | None:
        """The session the request's cookie names, if it is one of ours."""
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                with self._lock:
                    session = self._sessions.get(value)
                    if session is not None:
                        self._sessions.move_to_end(value)
                    return session
        return None

    def new(self, is_logged_in: bool = False) -> Session:
        """A fresh session (a new id at login, so an id seen before login is worth nothing)."""
        import secrets  # hashlib and OpenSSL: loaded at the first request, not at start-up

        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), is_logged_in)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

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
