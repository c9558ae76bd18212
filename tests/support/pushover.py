"""FakePushover: an HTTP server on 127.0.0.1 that answers like Pushover's Message API."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from support.clock import WAIT_S


@dataclass
class PushoverRequest:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class Answer:
    status: int = 200
    body: dict | str = field(default_factory=lambda: {"status": 1, "request": "req-ok"})
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # wait on this before answering (a slow API)


class FakePushover:
    """An HTTP server on 127.0.0.1 that answers like Pushover's Message API.

    Answers are scripted per test; with no script, every message succeeds.
    """

    LIMIT_HEADERS = {
        "X-Limit-App-Limit": "10000",
        "X-Limit-App-Remaining": "9876",
        "X-Limit-App-Reset": "1767225600",
    }

    def __init__(self, port: int = 0) -> None:
        self.requests: list[PushoverRequest] = []
        self.answers: list[Answer] = []
        self.received = threading.Condition()
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                # Bundled modules' tests use the same scripted server as a plain website.
                self.do_POST()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                with fake.received:
                    fake.requests.append(PushoverRequest(self.path, form, dict(self.headers)))
                    answer = fake.answers.pop(0) if fake.answers else Answer()
                    fake.received.notify_all()
                if answer.hold is not None:
                    answer.hold.wait(WAIT_S)
                body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                payload = body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in {**fake.LIMIT_HEADERS, **answer.headers}.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/1/messages.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def refuse(self, status: int, *errors: str, field_name: str = "user") -> Answer:
        """A 4xx answer shaped like Pushover's."""
        return Answer(status, {field_name: "invalid", "errors": list(errors), "status": 0,
                               "request": "req-refused"})

    def wait_for_requests(self, count: int) -> list[PushoverRequest]:
        with self.received:
            assert self.received.wait_for(lambda: len(self.requests) >= count, WAIT_S), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
