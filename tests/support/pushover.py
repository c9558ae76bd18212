"""FakePushover: an HTTP server on 127.0.0.1 that answers like Pushover's Message API, its
receipts (emergencies), cancels by tag and the application's limits."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from support.clock import WAIT_S


@dataclass
class PushoverRequest:
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # name -> (file, bytes, type)


def parse_body(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """A form-encoded or multipart/form-data body as its fields and its files."""
    if not content_type.startswith("multipart/form-data"):
        return {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}, {}
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    form, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[name] = (part.get_filename(), data, part.get_content_type())
        else:
            form[name] = data.decode()
    return form, files


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
        self.requests: list[PushoverRequest] = []  # messages (and, for website tests, anything else)
        self.answers: list[Answer] = []
        self.receipts: dict[str, dict] = {}  # receipt -> what GET receipts/{receipt}.json answers
        self.polls: list[str] = []  # receipts asked about, in order
        self.cancels: list[str] = []  # tags cancelled
        self.limit_reads = 0
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
                form, files = parse_body(self.headers.get("Content-Type", ""), self.rfile.read(length))
                path = urlsplit(self.path).path
                with fake.received:
                    answer = fake.api_answer(path, form)
                    if answer is None:
                        fake.requests.append(PushoverRequest(self.path, form, dict(self.headers), files))
                        answer = fake.answers.pop(0) if fake.answers else Answer()
                        emergency = form.get("priority") == "2" and answer.status == 200
                        if emergency and isinstance(answer.body, dict):
                            receipt = f"r{len(fake.receipts):029d}"
                            fake.receipts[receipt] = {"status": 1, "acknowledged": 0, "expired": 0,
                                                      "tags": form.get("tags", "")}
                            answer = Answer(body={**answer.body, "receipt": receipt})
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

    def api_answer(self, path: str, form: dict[str, str]) -> Answer | None:
        """Receipts, cancels and limits as Pushover answers them (None: a message). Called
        under `received`."""
        if path == "/1/apps/limits.json":
            self.limit_reads += 1
            return Answer(body={"limit": 10000, "remaining": 7496, "reset": 1767225600, "status": 1})
        if path.startswith("/1/receipts/cancel_by_tag/"):
            tag = path.rsplit("/", 1)[-1].removesuffix(".json")
            self.cancels.append(tag)
            for receipt in self.receipts.values():
                if receipt.get("tags") == tag:
                    receipt["cancelled"] = 1
            return Answer(body={"status": 1, "request": "req-cancel"})
        if path.startswith("/1/receipts/"):
            receipt = path.rsplit("/", 1)[-1].removesuffix(".json")
            self.polls.append(receipt)
            if receipt not in self.receipts:
                return Answer(404, {"receipt": "not found", "errors": ["receipt not found"], "status": 0})
            shown = {k: v for k, v in self.receipts[receipt].items() if k not in ("tags", "cancelled")}
            return Answer(body={**shown, "request": "req-receipt"})
        return None

    def acknowledge(self, receipt: str, by: str, device: str, at: int) -> None:
        """Someone acknowledged an emergency on their phone."""
        with self.received:
            self.receipts[receipt].update(acknowledged=1, acknowledged_by=by, acknowledged_by_device=device,
                                          acknowledged_at=at)

    def wait_for(self, what, timeout: float = WAIT_S):
        """Wait until `what()` is true (under the lock); return it."""
        with self.received:
            assert self.received.wait_for(what, timeout), (self.requests, self.polls, self.cancels)
            return what()

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
