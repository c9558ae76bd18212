"""Pings the Healthchecks way, against a fake Healthchecks server on 127.0.0.1: a module's
PING_URL gets /start, then the URL or /fail with the run's output; AUTOHOME_PING_URL gets
AutoHome's own pings at most once a minute."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.modules import spec

from autohome.app import build
from autohome.config import Config
from autohome.logs.setup import LogSetup
from autohome.running.capture import OutputCapture
from autohome.running.conditions import Machine


class Hit(NamedTuple):
    path: str
    body: str


class FakeHealthchecks:
    """Answers `OK` to every ping, as hc-ping.com does, and keeps what it was sent."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.changed = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with fake.changed:
                    fake.hits.append(Hit(self.path, body))
                    fake.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST  # noqa: N815 - GET, HEAD and POST all count

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, count: int) -> list[Hit]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.hits) >= count, WAIT_S), self.hits
            return list(self.hits)


@pytest.fixture
def healthchecks() -> Iterator[FakeHealthchecks]:
    server = FakeHealthchecks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_module_s_runs_ping_start_then_success_or_fail_with_its_output(healthchecks: FakeHealthchecks,
                                                                       logs: LogSetup) -> None:
    outcome = {"fail": False}

    def backup(log, notify):  # noqa: ANN001 - a module's run
        print("copied 3 files")  # noqa: T201 - what a module prints is its output
        if outcome["fail"]:
            raise OSError("disk full")

    clock, capture = FakeClock(T0), OutputCapture()  # what runs print, as the daemon splits it
    main = build(Config(console_enabled=False, web_enabled=False), clock,
                 [spec("backup", backup, ping_url=f"{healthchecks.url}/check-uuid")], machine=Machine(None),
                 capture=capture, logs=logs)
    capture.install()
    try:
        pinged_backup(main, healthchecks, outcome)
    finally:
        capture.uninstall()
        main.shutdown()


def pinged_backup(main, healthchecks: FakeHealthchecks, outcome: dict[str, bool]) -> None:  # noqa: ANN001
    main.tick(T0)
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    start, success = healthchecks.wait_for(2)
    assert start.path.startswith("/check-uuid/start?rid=")
    run_id = start.path.split("rid=")[1]
    assert success.path == f"/check-uuid?rid={run_id}" and "copied 3 files" in success.body
    outcome["fail"] = True
    main.tick(T0 + timedelta(minutes=1))
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    *_, start, failure = healthchecks.wait_for(4)
    assert failure.path == f"/check-uuid/fail?rid={start.path.split('rid=')[1]}"
    assert "copied 3 files" in failure.body


def test_autohome_pings_its_own_url_at_most_once_a_minute(healthchecks: FakeHealthchecks) -> None:
    clock = FakeClock(T0)
    main = build(Config(console_enabled=False, web_enabled=False, ping_url=f"{healthchecks.url}/autohome"),
                 clock, [], machine=Machine(None))
    for seconds in (0, 30, 60, 90):
        main.tick(T0 + timedelta(seconds=seconds))
    hits = healthchecks.wait_for(2)
    main.shutdown()
    assert [hit.path for hit in hits] == ["/autohome", "/autohome"]  # at 0 and 60 s, not at 30 or 90


def test_a_ping_that_cannot_go_out_is_dropped_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from autohome.notifications.pings import Pinger

    pinger = Pinger("http://127.0.0.1:9/nobody-listens", is_online=lambda: True)
    pinger.alive(T0)
    with caplog.at_level("WARNING"):
        pinger.stop()  # what is queued is tried once more, then given up: a late ping would mislead
    assert [record.getMessage() for record in caplog.records if "ping to" in record.getMessage()] == [
        "ping to http://127.0.0.1:9/nobody-listens not sent (ConnectionError); dropped: a late ping would "
        "mislead"]
