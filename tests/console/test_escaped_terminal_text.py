"""Text from modules and from the world never drives the user's terminal: control characters
reach the log, the console and the command line escaped."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.console import ConsoleClient
from support.modules import ROOT, write_module
from support.processes import clean_env, run_autohome

OSC_52 = "\x1b]52;c;ZWNobyBvd25lZA==\x07"  # writes the clipboard in xterm, kitty, iTerm2
OSC_0 = "\x1b]0;pwned\x07"  # sets the window title
EVIL = f'''
    """Looks harmless{OSC_0}."""
    INTERVAL = 30

    def run(log, notify, store):
        log.info("title %s", {OSC_0!r})
        print({OSC_52!r})
        store.set("key\\x1b[2J", "value")
        notify("phone text \\x1b[31m")
        raise RuntimeError({OSC_52!r})
'''


@pytest.fixture
def odd_reason() -> Iterator[str]:
    """A website whose HTTP reason phrase is a terminal escape."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(503, OSC_52)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_control_characters_reach_no_terminal_raw(tmp_path: Path, daemon_factory, odd_reason: str) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "evil", EVIL)
    shutil.copy(ROOT / "modules" / "website_watch.py", modules / "website_watch.py")
    daemon = daemon_factory(tmp_path, "-t", "--port", "0", env=clean_env(AUTOHOME_WATCH_URLS=odd_reason))
    daemon.wait_for("module evil failed")
    daemon.wait_for_all("website_watch finished")
    port = str(daemon.console_port)
    client = ConsoleClient(daemon.console_port)
    answers = b"".join(client.command(command).encode() for command in (
        "modules", "modules read evil", "log 50", "notifications", "modules read website_watch"))
    assert b"\x1b" not in answers and b"\x07" not in answers
    assert b"\\x1b]52;c;ZWNobyBvd25lZA==\\x07" in answers and b"\\x1b]0;pwned" in answers
    assert b"key\\x1b[2J" in answers and b"phone text \\x1b[31m" in answers
    env = clean_env(AUTOHOME_CONSOLE_PORT=port)
    for command in (("status",), ("log", "-n", "50")):
        result = run_autohome(tmp_path, *command, env=env)
        assert result.returncode == 0 and "\x1b" not in result.stdout and "\\x1b" in result.stdout
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    log = (tmp_path / "logs" / "test.log").read_text(encoding="utf-8")
    assert "\x1b" not in log and "\x07" not in log
    assert "is down: HTTP 503 \\x1b]52;c;ZWNobyBvd25lZA==\\x07" in log
    assert all("\x1b" not in line for line in daemon.lines)  # the terminal AutoHome writes to
    checked = run_autohome(tmp_path, "check")
    assert "\x1b" not in checked.stdout
    ran = run_autohome(tmp_path, "run", "evil")
    assert ran.returncode == 1 and "\x1b" not in ran.stdout and "out: \\x1b]52;" in ran.stdout
