"""Pings for a dead man's switch, the Healthchecks way: AutoHome's own "still running" (at
most once a minute, when online) and each module's run (`/start`, then the URL or `/fail`
with the run's last output as the body). One `pings` thread sends them, started with the
first; a ping that cannot go out is tried a few times within a minute, then dropped with one
log line: a ping hours late would mislead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from autohome.logs.tree import get_logger

log = get_logger("autohome.pings")

EVERY = timedelta(minutes=1)  # AutoHome's own pings, at most this often
RETRY_S = (5.0, 15.0, 30.0)  # a failed ping is tried again after these, then dropped
MAX_BODY_BYTES = 100_000  # what Healthchecks keeps of a body
TIMEOUT_S = 10.0


class Ping(NamedTuple):
    """One request: where, and what it carries (a run's output)."""

    url: str
    body: bytes = b""


class Pinger:
    """Sends pings on a thread of its own, in order; never blocks a run or the tick."""

    def __init__(self, url: str = "", is_online: Callable[[], bool] = lambda: True) -> None:
        self.url = url.rstrip("/")  # AUTOHOME_PING_URL ("" : none)
        self.is_online = is_online
        self._queue: queue.SimpleQueue[Ping | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._last_alive: datetime | None = None

    def alive(self, now: datetime) -> None:
        """AutoHome runs: ping its URL, at most once a minute and only when online."""
        if not self.url or (self._last_alive is not None and timedelta(0) <= now - self._last_alive < EVERY):
            return
        if self.is_online():
            self._last_alive = now
            self._send(Ping(self.url))

    def started(self, url: str) -> str:
        """A module's run starts: `/start`; returns the run's id, which pairs its end with it."""
        import uuid  # with `platform`, 2 ms of start-up: only once a module pings

        run_id = str(uuid.uuid4())
        self._send(Ping(f"{url}/start?rid={run_id}"))
        return run_id

    def ended(self, url: str, run_id: str, ok: bool, output: list[str]) -> None:
        """A module's run ended: the URL (or `/fail`), its last output lines as the body."""
        body = "\n".join(output).encode("utf-8", errors="replace")[-MAX_BODY_BYTES:]
        self._send(Ping(f"{url}{'' if ok else '/fail'}?rid={run_id}", body))

    def stop(self) -> None:
        """Send what is queued (briefly), then end the thread."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(TIMEOUT_S)

    def _send(self, ping: Ping) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="pings", daemon=True)
                self._thread.start()
        self._queue.put(ping)

    def _work(self) -> None:
        import requests  # only a daemon that pings needs it

        session = requests.Session()
        while (ping := self._queue.get()) is not None:
            try:
                self._deliver(session, ping)
            except Exception:  # noqa: BLE001 - the one catch of this thread: pings go on
                log.exception("ping to %s failed", ping.url.split("?")[0])

    def _deliver(self, session: object, ping: Ping) -> None:
        import requests

        assert isinstance(session, requests.Session)
        problem = ""
        for wait_s in (0.0, *RETRY_S):
            if wait_s and self._stopping.wait(wait_s):
                break
            try:
                answer = session.post(ping.url, data=ping.body, timeout=TIMEOUT_S)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
                continue
            if answer.status_code < 500 and answer.status_code != 429:
                if answer.status_code >= 400:
                    log.warning("ping to %s refused: %d %s", ping.url.split("?")[0], answer.status_code,
                                answer.text[:200])
                return
            problem = f"HTTP {answer.status_code}"
        log.warning("ping to %s not sent (%s); dropped: a late ping would mislead", ping.url.split("?")[0],
                    problem or "stopping")
