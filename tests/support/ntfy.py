"""FakeNtfy: an HTTP server on 127.0.0.1 that answers like an ntfy server, reached in the
tests through the real `apprise` library (ntfy://127.0.0.1:PORT/topic)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from support.clock import WAIT_S


@dataclass
class NtfyMessage:
    topic: str
    message: str
    title: str
    attachment: bytes | None = None
    filename: str | None = None


class FakeNtfy:
    """Takes JSON publishes (POST /) and attachments (POST /topic with the file as the body);
    `statuses` scripts the answers (200 when empty)."""

    def __init__(self) -> None:
        self.messages: list[NtfyMessage] = []
        self.statuses: list[int] = []
        self.received = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                return self.do_PUT()

            def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = urlsplit(self.path)
                with fake.received:
                    status = fake.statuses.pop(0) if fake.statuses else 200
                    if status == 200:
                        if url.path.strip("/"):  # an attachment: the file is the body
                            query = {k: v[0] for k, v in parse_qs(url.query).items()}
                            fake.messages.append(NtfyMessage(url.path.strip("/"), query.get("message", ""),
                                                             query.get("title", ""), raw,
                                                             query.get("filename")))
                        else:
                            body = json.loads(raw)
                            fake.messages.append(NtfyMessage(body["topic"], body.get("message", ""),
                                                             body.get("title", "")))
                    fake.received.notify_all()
                refusal = {"code": status * 100 + 1, "http": status, "error": "scripted"}  # as ntfy's
                answer = json.dumps({"id": "abc", "event": "message"} if status == 200 else refusal).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"ntfy://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for_messages(self, count: int) -> list[NtfyMessage]:
        with self.received:
            assert self.received.wait_for(lambda: len(self.messages) >= count, WAIT_S), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
