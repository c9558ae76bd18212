"""The status page: a WSGI application over the console's read model (the `Controller`).

It reads what the console reads and acts as the console acts; it never opens the database
itself. Every response carries a Content-Security-Policy that allows only the page's own
files; every request must name this host (no DNS rebinding); every POST carries its
session's token; with a password set, every page but the login form needs a login.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from autohome.control.commands import Commands
from autohome.control.penalties import Penalties
from autohome.control.views import Controller
from autohome.logs.tree import get_logger
from autohome.web.pages import Pages
from autohome.web.sessions import Session, Sessions, cookie

log = get_logger("autohome.web")

STATIC = Path(__file__).parent / "static"
MAX_BODY = 16 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_SECURITY = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
             ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")]
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".png": "image/png", ".svg": "image/svg+xml"}
# Compiled at first use (re caches them): start-up does not pay for them.
_ACTION = r"^/modules/([^/]+)/([a-z-]+)$"  # the action: a console command's `page` (commands.py)
_MODULE = r"^/modules/([^/]+)$"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Response:
    """A status, headers and a body; the security headers are added on the way out."""

    def __init__(self, body: str | bytes = b"", status: str = "200 OK",
                 content_type: str = "text/html; charset=utf-8") -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.status = status
        self.headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]

    @classmethod
    def redirect(cls, location: str) -> Response:
        response = cls(b"", "303 See Other")
        response.headers.append(("Location", location))
        return response

    @classmethod
    def refused(cls, status: str, why: str) -> Response:
        return cls(why + "\n", status, "text/plain; charset=utf-8")


class StatusPage:
    """The WSGI application. `host` and `port` are where it listens, for the Host check."""

    def __init__(self, controller: Controller, zone: tzinfo, password: str = "", host: str = "127.0.0.1",
                 port: int = 8023) -> None:
        self.pages = Pages(controller, zone)
        self.commands = Commands(controller, zone)  # what the page's buttons call
        self.sessions = Sessions(password)
        self.penalties = Penalties()  # wrong passwords: after three, each is answered later
        self.stopping = threading.Event()  # set at shutdown: no answer waits any longer
        self.host = host
        self.port = port

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""
        try:
            response = self._respond(environ)
        except Exception:  # a bug must not take waitress's thread, nor show a traceback
            log.exception("status page: %s %s failed", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            response = Response.refused("500 Internal Server Error", "something went wrong; see the log")
        start_response(response.status, response.headers + _SECURITY)
        return [response.body]

    def _respond(self, environ: dict[str, Any]) -> Response:
        if not self._is_our_host(environ.get("HTTP_HOST", "")):
            log.warning("status page: refused a request for Host %r (DNS rebinding?)",
                        environ.get("HTTP_HOST", "")[:100])
            return Response.refused("421 Misdirected Request", "this page answers only to its own address")
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/static/") and method == "GET":
            return self._static(path.removeprefix("/static/"))
        session = self.sessions.find(environ.get("HTTP_COOKIE", ""))
        if path == "/login":
            return self._login(environ, method, session)
        if self.sessions.needs_login and (session is None or not session.is_logged_in):
            if method == "POST":
                return Response.refused("403 Forbidden", "log in first")
            return Response.redirect("/login")
        if method == "POST":
            return self._post(environ, path, session)
        if method not in ("GET", "HEAD"):
            return Response.refused("405 Method Not Allowed", "GET or POST")
        new_session = session is None
        if session is None:
            session = self.sessions.new()
        response = self._get(environ, path, session)
        if new_session:
            response.headers.append(("Set-Cookie", cookie(session)))
        return response

    def _is_our_host(self, header: str) -> bool:
        """The Host header names this page: a loopback name or the configured host, and the
        port it listens on (or none)."""
        header = header.strip().lower()
        if header.startswith("["):  # [::1]:8023
            name, _, rest = header.partition("]")
            name, port = name + "]", rest.removeprefix(":")
        else:
            name, _, port = header.partition(":")
        if port and port != str(self.port):
            return False
        host = self.host.lower()
        return name in (*LOOPBACK_NAMES, host, f"[{host}]")

    def _get(self, environ: dict[str, Any], path: str, session: Session) -> Response:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        span = query.get("span", ["24h"])[0]
        if path == "/":
            return Response(self.pages.index(span, session.token))
        if path == "/live":
            return self._fresh(environ, self.pages.live(span, session.token))
        if path == "/log":
            return self._fresh(environ, self.pages.log_tail())
        found = re.match(_MODULE, path)
        if found:
            page = self.pages.module(found.group(1), session.token)
            return Response(page) if page is not None else Response.refused(
                "404 Not Found", f"no module named {found.group(1)!r}")
        return Response.refused("404 Not Found", "no such page")

    @staticmethod
    def _fresh(environ: dict[str, Any], html: str) -> Response:
        """A part of the page that the script fetches again and again: unchanged, it is 304."""
        import hashlib  # OpenSSL: loaded at the first request, not at start-up

        tag = '"' + hashlib.blake2b(html.encode("utf-8"), digest_size=12).hexdigest() + '"'
        if environ.get("HTTP_IF_NONE_MATCH") == tag:
            response = Response(b"", "304 Not Modified")
        else:
            response = Response(html)
        response.headers[1] = ("Cache-Control", "no-cache")
        response.headers.append(("ETag", tag))
        return response

    def _post(self, environ: dict[str, Any], path: str, session: Session | None) -> Response:
        form = _form(environ)
        if not self.sessions.has_token(session, form.get("token", "")):
            log.warning("status page: refused a POST to %s without its session's token", path[:100])
            return Response.refused("403 Forbidden", "missing or wrong token: reload the page")
        assert session is not None
        if path == "/logout":
            self.sessions.end(session)
            return Response.redirect("/login" if self.sessions.needs_login else "/")
        if path == "/notify-test":
            message = self.commands.page_action("notify-test",
                                                text="Test notification from AutoHome's status page")
        else:
            found = re.match(_ACTION, path)
            message = None if found is None else self.commands.page_action(found.group(2), found.group(1))
        if message is None:
            return Response.refused("404 Not Found", "no such action")
        log.info("status page: %s: %s", path, message)
        if environ.get("HTTP_X_REQUESTED_WITH") == "fetch":
            import json

            return Response(json.dumps({"message": message}), content_type="application/json")
        back = form.get("back", "/")
        local = back.startswith("/") and not back.startswith("//") and "\\" not in back
        return Response.redirect(back if local else "/")

    def _login(self, environ: dict[str, Any], method: str, session: Session | None) -> Response:
        if not self.sessions.needs_login:
            return Response.redirect("/")
        if method != "POST":
            return Response(self.pages.login(""))
        address = str(environ.get("REMOTE_ADDR", "?"))
        left_s = self.penalties.left_s(address)
        if left_s:  # answered at once, the password not looked at: a guesser holds no thread
            return _too_soon(left_s)
        given = _form(environ).get("password", "")
        if not self.sessions.is_password(given):
            failures = self.penalties.failed(address)
            log.warning("status page: wrong password from %s (%d failed in a row from this source)",
                        address, failures)
            response = Response(self.pages.login("wrong password"), "403 Forbidden")
            left_s = self.penalties.left_s(address)
            if left_s:
                response.headers.append(("Retry-After", str(math.ceil(left_s))))
            return response
        self.penalties.succeeded(address)
        if session is not None:
            self.sessions.end(session)
        fresh = self.sessions.new(is_logged_in=True)
        log.info("status page: %s logged in", environ.get("REMOTE_ADDR", "?"))
        response = Response.redirect("/")
        response.headers.append(("Set-Cookie", cookie(fresh)))
        return response

    @staticmethod
    def _static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or "\\" in name or not path.is_file():
            return Response.refused("404 Not Found", "no such file")
        response = Response(path.read_bytes(),
                            content_type=_TYPES.get(path.suffix, "application/octet-stream"))
        response.headers[1] = ("Cache-Control", "max-age=300")
        return response


def _too_soon(left_s: float) -> Response:
    seconds = math.ceil(left_s)
    response = Response.refused("429 Too Many Requests", f"too many wrong passwords from this machine: try "
                                                         f"again in {seconds} s")
    response.headers.append(("Retry-After", str(seconds)))
    return response


def _form(environ: dict[str, Any]) -> dict[str, str]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_BODY)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}

