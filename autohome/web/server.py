"""Serving the status page with waitress on a thread of its own, started and stopped with
the daemon. Idle, its loop sleeps: waitress wakes for a request, for shutdown (its trigger),
and otherwise once an hour, to close connections a browser left half-open."""

from __future__ import annotations

import threading
from datetime import tzinfo
from typing import Any

from autohome.console import is_loopback
from autohome.logtree import get_logger

log = get_logger("autohome.web")

IDLE_WAKE_S = 3600  # waitress's loop timeout; requests and shutdown wake it at once
THREADS = 2  # requests answered at once: a person with a tab or two


class StatusServer:
    """The page's waitress server and its thread."""

    def __init__(self, controller: Any, zone: tzinfo, host: str, port: int, password: str) -> None:
        self.controller = controller
        self.zone = zone
        self.app: Any = None  # the StatusPage, made at start: after the console listens
        self.host = host
        self.port = port
        self.password = password
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int] | None:
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
            self._server = create_server(self.app, host=self.host, port=self.port, threads=THREADS,
                                         asyncore_loop_timeout=IDLE_WAKE_S, ident="AutoHome",
                                         expose_tracebacks=False, clear_untrusted_proxy_headers=True)
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

    def _serve(self) -> None:
        try:
            self._server.run()
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


def start_web(web: StatusServer | None) -> StatusServer | None:
    """Start the page and say where it is; None when it is off or could not start."""
    if web is None:
        return None
    address = web.start()
    if address is None:
        return None
    log.info("status page at %s", page_url(*address))
    return web


def page_url(host: str, port: int) -> str:
    """How the log names the page."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
