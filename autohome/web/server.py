"""Serving the status page with waitress on a thread of its own, started and stopped with
the daemon. Idle, its loop sleeps: waitress wakes for a request, for shutdown (its trigger),
and otherwise once an hour, to close connections a browser left half-open.

Another account on the same machine must not be able to take the page from its owner: a
request body is refused by its size before it is read (and never goes to a temporary file),
a connection that sends nothing for CHANNEL_TIMEOUT_S is closed, and past MAX_CONNECTIONS the
oldest connection that is not being answered makes room for the newest (idle or trickling
ones: the owner's new request always gets in). While connections are open the loop looks
at them every second; with none, it sleeps."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from autohome.clock import monotonic_s
from autohome.config import is_loopback
from autohome.control.views import Controller
from autohome.logs.tree import get_logger

log = get_logger("autohome.web")

IDLE_WAKE_S = 3600  # waitress's loop timeout; requests and shutdown wake it at once
THREADS = 2  # requests answered at once: a person with a tab or two
MAX_CONNECTIONS = 24  # open at once; past that the oldest not being answered is closed
CHANNEL_TIMEOUT_S = 10  # a connection silent this long is closed
MAX_BODY_BYTES = 64 * 1024  # a request body larger than this is refused (413) before it is read


class StatusServer:
    """The page's waitress server and its thread."""

    def __init__(self, controller: Controller, zone: tzinfo, host: str, port: int, password: str) -> None:
        self.controller = controller
        self.zone = zone
        self.app: Any = None  # the StatusPage, made at start: after the console listens
        self.host = host
        self.port = port
        self.password = password
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, any_port_if_taken: bool = False) -> tuple[str, int] | None:
        """Listen and serve; None (and one log line) when the page cannot start. The daemon
        runs on without it."""
        if not is_loopback(self.host) and not self.password:
            log.error("status page not started: AUTOHOME_WEB_HOST=%s lets other machines in; set "
                      "AUTOHOME_CONSOLE_PASSWORD in .env to allow it (the page then asks for it), "
                      "or use 127.0.0.1; modules keep running", self.host)
            return None
        from waitress.server import create_server  # only a daemon with the page needs it

        from autohome.web.app import StatusPage

        self.app = StatusPage(self.controller, self.zone, self.password, self.host, self.port)
        try:
            try:
                self._server = self._listen(create_server, self.port)
            except OSError as exc:
                if not (any_port_if_taken and exc.errno == errno.EADDRINUSE):
                    raise
                log.info("test mode: the status page's port %d is taken (by the AutoHome that runs?); "
                         "this one takes a free port", self.port)
                self._server = self._listen(create_server, 0)
        except OSError as exc:
            log.error("status page not started: cannot listen on %s:%d (%s); modules keep running. "
                      "Set AUTOHOME_WEB_PORT (or --web-port) to a free port, or --no-web",
                      self.host, self.port, exc.strerror or exc)
            return None
        self.port = int(self._server.effective_port)
        self.app.port = self.port  # the Host check names the real port (--web-port 0)
        self._thread = threading.Thread(target=self._serve, name="status-page", daemon=True)
        self._thread.start()
        return self.host, self.port

    def _listen(self, create_server: Callable[..., Any], port: int) -> Any:
        """waitress's server on `port`, with the page's limits."""
        return create_server(self.app, host=self.host, port=port, threads=THREADS,
                             asyncore_loop_timeout=IDLE_WAKE_S, ident="AutoHome",
                             expose_tracebacks=False, clear_untrusted_proxy_headers=True,
                             max_request_body_size=MAX_BODY_BYTES, inbuf_overflow=MAX_BODY_BYTES,
                             max_request_header_size=32 * 1024, channel_timeout=CHANNEL_TIMEOUT_S,
                             cleanup_interval=1, connection_limit=MAX_CONNECTIONS * 4)

    def _serve(self) -> None:
        """waitress's loop, a round at a time: with connections open, it wakes every second to
        close the idle ones and keep their number bounded; with none, it sleeps an hour."""
        from waitress import wasyncore
        from waitress.channel import HTTPChannel

        server = self._server
        born: dict[int, float] = {}  # each connection's first sight, to close the oldest first
        try:
            while server._map:
                channels = [item for item in server._map.values() if isinstance(item, HTTPChannel)]
                wasyncore.loop(timeout=1.0 if channels else IDLE_WAKE_S, map=server._map, count=1)
                if channels:
                    _bound(channels, born)
        except Exception:  # noqa: BLE001 - the one catch of this thread: the page goes, AutoHome stays
            log.exception("the status page stopped; modules keep running")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close every connection from the server's own thread, and wait for it to end."""
        if self._server is None or self._thread is None:
            return
        self.app.stopping.set()
        from waitress import wasyncore

        server = self._server

        def close_all() -> None:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout_s)
            wasyncore.close_all(server._map)

        server.trigger.pull_trigger(close_all)
        self._thread.join(timeout_s)


def _bound(channels: list[Any], born: dict[int, float]) -> None:
    """Past MAX_CONNECTIONS, close the oldest connections that are not being answered."""
    now = monotonic_s()
    open_now = {id(channel) for channel in channels}
    for gone in [key for key in born if key not in open_now]:
        del born[gone]
    for channel in channels:
        born.setdefault(id(channel), now)
    waiting = sorted((channel for channel in channels if not channel.requests and channel.connected),
                     key=lambda channel: born[id(channel)])
    for channel in waiting[:max(0, len(channels) - MAX_CONNECTIONS)]:
        channel.handle_close()


def start_web(web: StatusServer | None, any_port_if_taken: bool = False) -> StatusServer | None:
    """Start the page and say where it is; None when it is off or could not start. With
    `any_port_if_taken` (test mode, beside a running AutoHome) a taken port is replaced by a
    free one, said in the log."""
    if web is None:
        return None
    address = web.start(any_port_if_taken)
    if address is None:
        return None
    log.info("status page at %s", page_url(*address))
    return web


def page_url(host: str, port: int) -> str:
    """How the log names the page."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
