"""The status page over real HTTP: what it shows, and what it refuses."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from support.console import ConsoleClient, console_port
from support.logs import log_seen
from support.modules import settle, spec, sunny

from autohome.app import Main
from autohome.logs.setup import LogSetup
from autohome.logs.tree import get_logger
from autohome.web.app import CSP


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read().decode("utf-8")


class Browser:
    """A cookie jar and the page's token, over http.client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""
        self.token = ""

    def request(self, method: str, path: str, body: dict[str, str] | None = None,
                host: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = {"Host": f"127.0.0.1:{self.port}" if host is None else host, **(headers or {})}
        if self.cookie:
            sent["Cookie"] = self.cookie
        data = None
        if body is not None:
            data = urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=sent)
        reply = Reply(connection.getresponse())
        connection.close()
        if "Set-Cookie" in reply.headers:
            self.cookie = reply.headers["Set-Cookie"].split(";")[0]
        found = re.search(r'name="token" value="([^"]+)"', reply.body)
        if found:
            self.token = found.group(1)
        return reply

    def get(self, path: str, **kwargs: object) -> Reply:
        return self.request("GET", path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, body: dict[str, str], **kwargs: object) -> Reply:
        return self.request("POST", path, body, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def main(web_main: Main) -> Main:
    return web_main


@pytest.fixture
def browser(main: Main) -> Browser:
    assert main.web is not None
    return Browser(main.web.port)


def test_the_page_shows_every_module_with_strict_headers(browser: Browser) -> None:
    reply = browser.get("/")
    assert reply.status == 200
    for name in ("weather", "failing", "scripted"):
        assert f'id="module-{name}"' in reply.body
    assert reply.headers["Content-Security-Policy"] == CSP and "unsafe" not in CSP
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert '<svg class="timeline"' in reply.body  # drawn on the server: no script needed


def test_a_foreign_host_is_refused(browser: Browser) -> None:
    for host in ("evil.example", f"evil.example:{browser.port}", "127.0.0.1:1", ""):
        assert browser.get("/", host=host).status == 421, host
    for host in (f"localhost:{browser.port}", f"[::1]:{browser.port}", "127.0.0.1"):
        assert browser.get("/", host=host).status == 200, host


def test_a_post_needs_the_session_token(browser: Browser, main: Main, logs: LogSetup) -> None:
    assert browser.post("/modules/weather/run", {}).status == 403  # no session at all
    browser.get("/")
    assert browser.post("/modules/weather/run", {"token": "guessed"}).status == 403
    assert browser.post("/modules/weather/pause", {"token": ""}).status == 403
    assert 'data-state="paused"' not in browser.get("/").body  # the refused pause did nothing
    reply = browser.post("/modules/weather/run", {"token": browser.token, "back": "/modules/weather"})
    assert reply.status == 303 and reply.headers["Location"] == "/modules/weather"
    settle(main, logs)
    assert "sunny" in browser.get("/modules/weather").body  # it ran: its log line is on its page
    reply = browser.post("/modules/weather/pause", {"token": browser.token},
                         headers={"X-Requested-With": "fetch"})
    assert reply.status == 200 and "paused" in reply.body
    assert 'data-state="paused"' in browser.get("/").body


def test_every_text_a_module_gives_is_escaped(browser: Browser, main: Main, logs: LogSetup) -> None:
    for name in ("failing", "scripted"):
        browser.get("/")
        browser.post(f"/modules/{name}/run", {"token": browser.token})
    settle(main, logs)
    page = "".join(browser.get(path).body for path in ("/", "/modules/scripted", "/modules/failing"))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>today</b>" not in page and "no network &lt;b&gt;today&lt;/b&gt;" in page


def test_parts_that_did_not_change_are_not_sent_again(browser: Browser) -> None:
    first = browser.get("/live?span=1h")
    assert first.status == 200 and first.headers["ETag"]
    again = browser.get("/live?span=1h", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and again.body == ""


def test_unknown_pages_and_files_are_404(browser: Browser) -> None:
    assert browser.get("/modules/nothing").status == 404
    assert browser.get("/static/../app.py").status == 404
    assert browser.get("/static/style.css").headers["Content-Type"].startswith("text/css")


def test_with_a_password_every_page_needs_a_login(console_factory: Callable[..., Main]) -> None:
    main = console_factory(spec("weather", sunny, 300), web_enabled=True, web_port=0,
                           console_password="correct horse")
    assert main.web is not None
    browser = Browser(main.web.port)
    reply = browser.get("/")
    assert reply.status == 303 and reply.headers["Location"] == "/login"
    assert browser.post("/modules/weather/run", {"token": "x"}).status == 403
    assert browser.post("/login", {"password": "wrong"}).status == 403
    reply = browser.post("/login", {"password": "correct horse"})
    assert reply.status == 303 and "HttpOnly" in reply.headers["Set-Cookie"]
    assert "SameSite=Strict" in reply.headers["Set-Cookie"]
    assert browser.get("/").status == 200 and browser.token


def test_a_non_loopback_address_without_a_password_is_refused(console_factory: Callable[..., Main]) -> None:
    with log_seen("status page not started: AUTOHOME_WEB_HOST=0.0.0.0") as refused:
        main = console_factory(web_enabled=True, web_host="0.0.0.0", web_port=0)
        assert refused.wait()
    assert main.web is None


def test_a_port_in_use_is_one_line_and_the_daemon_runs(console_factory: Callable[..., Main]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with log_seen(f"status page not started: cannot listen on 127.0.0.1:{port}") as refused:
            main = console_factory(spec("weather", sunny, 300), web_enabled=True, web_port=port)
            assert refused.wait()
    assert main.web is None
    assert "weather" in ConsoleClient(main.console.address[1]).command("modules")  # type: ignore[union-attr]


def test_the_page_logs_where_it_is(console_factory: Callable[..., Main]) -> None:
    with log_seen("status page at http://127.0.0.1:") as said:
        console_factory(web_enabled=True, web_port=0)
        assert said.wait()


def test_wrong_passwords_are_counted_per_source_and_answered_at_once(
        console_factory: Callable[..., Main]) -> None:
    from autohome.control.penalties import Penalties

    main = console_factory(web_enabled=True, web_port=0, console_password="correct horse")
    assert main.web is not None
    now = [0.0]
    main.web.app.penalties = Penalties(monotonic=lambda: now[0])  # time moved by the test
    browser = Browser(main.web.port)
    with log_seen("status page: wrong password from 127.0.0.1 (4 failed in a row") as fourth:
        for _ in range(3):
            assert browser.post("/login", {"password": "guess"}).status == 403
        fourth_try = browser.post("/login", {"password": "guess"})
        assert fourth.wait()
    assert fourth_try.status == 403 and fourth_try.headers["Retry-After"] == "2"
    held = [browser.post("/login", {"password": guess}) for guess in ("guess", "correct horse")]
    assert [reply.status for reply in held] == [429, 429]  # at once, the password not looked at
    assert held[0].headers["Retry-After"] == "2" and "try again in 2 s" in held[0].body
    assert browser.get("/login").status == 200  # no thread is held by the guesser
    now[0] += 2
    assert browser.post("/login", {"password": "correct horse"}).status == 303
    assert browser.get("/").status == 200


def test_a_web_page_s_requests_cannot_push_out_the_owner_s_session(browser: Browser) -> None:
    browser.get("/")
    owner_cookie, owner_token = browser.cookie, browser.token
    for _ in range(520):  # what <img> tags on another site's page can make a browser send
        Browser(browser.port).get("/log")  # no cookie: before, each made a session that was kept
    browser.cookie, browser.token = owner_cookie, owner_token
    assert browser.post("/modules/weather/run", {"token": owner_token}).status == 303


def test_a_module_page_shows_its_description_runs_and_timeout(browser: Browser, main: Main, logs) -> None:
    browser.get("/")
    browser.post("/modules/weather/run", {"token": browser.token})
    settle(main, logs)
    page = browser.get("/modules/weather").body
    assert "Fetch the weather." in page and "every 5m" in page
    assert "<dt>timeout</dt><dd>10m</dd>" in page  # AUTOHOME_MODULE_TIMEOUT, said as a person would
    assert '<svg class="durations"' in page and "sunny" in page


def test_idle_connections_cannot_take_the_page_from_its_owner(browser: Browser) -> None:
    idle = [socket.create_connection(("127.0.0.1", browser.port)) for _ in range(100)]
    try:
        assert browser.get("/").status == 200  # before: the page was dead until they timed out (120 s)
    finally:
        for sock in idle:
            sock.close()


def test_a_big_body_is_refused_before_it_is_read(browser: Browser) -> None:
    with socket.create_connection(("127.0.0.1", browser.port), timeout=10) as sock:
        sock.sendall(b"POST /notify-test HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 800000000\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        answer = sock.recv(4096)  # before: waitress waited for (and stored) the 800 MB first
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_week_of_runs_is_drawn_in_a_page_whose_size_follows_the_width(console_factory) -> None:
    from datetime import timedelta

    from support.clock import T0

    from autohome.storage.db import RunRow
    from autohome.storage.runs import add_runs

    main = console_factory(spec("weather", sunny, 300), web_enabled=True, web_port=0)
    rows = []
    for number in range(30_000):  # a run a minute for three weeks, one in three failing
        moment = T0 - timedelta(minutes=number)
        failed = number % 3 == 0
        rows.append(RunRow(0, "weather", moment, moment, 0.5, "RuntimeError: flaky" if failed else None,
                           "error" if failed else "ok"))
    add_runs(main.states.db, rows, set())
    browser = Browser(main.web.port)  # type: ignore[union-attr]
    week = browser.get("/?span=7d")
    assert week.status == 200 and week.body.count('class="mark error"') >= 1
    assert len(week.body) < 200_000  # before: a mark, and a title, for nearly every run (3 MB)


def test_the_page_calls_only_the_console_commands_declared_for_it(browser: Browser, main: Main) -> None:
    from autohome.control.commands import COMMANDS

    browser.get("/")
    for action in ("read", "reload", "shutdown", "notify-test", "start"):  # not the page.s to call
        reply = browser.post(f"/modules/weather/{action}", {"token": browser.token})
        assert reply.status == 404, action
    assert not main.stop.is_requested
    declared = {command.page for command in COMMANDS if command.page.isalpha()}
    assert declared == {"run", "pause", "resume", "stop"}
    for action in sorted(declared):
        reply = browser.post(f"/modules/weather/{action}", {"token": browser.token},
                             headers={"X-Requested-With": "fetch"})
        assert reply.status == 200 and "weather" in reply.body, action


def test_a_module_page_shows_what_its_store_holds(browser: Browser, main: Main) -> None:
    from autohome.storage.store import ModuleStore

    store = ModuleStore(main.states.db, "weather")
    store.set("sky", "blue <b>sunny</b>")
    store.set("readings", list(range(100)))
    page = browser.get("/modules/weather").body
    assert "<th>sky</th>" in page and "&#34;blue &lt;b&gt;sunny&lt;/b&gt;&#34;" in page
    assert "<th>readings</th>" in page and "[0, 1, 2" in page and ", 99]" not in page  # cut to a line


def test_the_page_tells_the_truth_about_failing_off_and_waiting(browser: Browser, main: Main, logs) -> None:
    browser.get("/")
    browser.post("/modules/failing/run", {"token": browser.token})
    settle(main, logs)
    main.notifier.for_module(get_logger("autohome.modules.weather"))("kept for later")  # no Pushover keys
    page = browser.get("/").body
    assert 'data-state="failing"' in page and '<span class="badge failing">failing</span>' in page
    # Ours and the failure's alert, both kept: Pushover has no keys here.
    assert "<dt>notifications waiting</dt><dd>2 (2 kept until a channel is set up)</dd>" in page
    assert "<dt>Pushover quota</dt><dd>no Pushover configured</dd>" in page
    reply = browser.post("/modules/nosuch/run", {"token": browser.token},
                         headers={"X-Requested-With": "fetch"})
    assert "see the modules table" in reply.body and "'modules'" not in reply.body  # no console words


def test_the_page_counts_what_waits_on_each_channel(clock, logs: LogSetup) -> None:
    from support.ntfy import FakeNtfy
    from support.pushover import Answer, FakePushover

    from autohome.app import build
    from autohome.config import Config
    from autohome.notifications.channels import AppriseChannel, PushoverChannel
    from autohome.notifications.pushover import PushoverClient

    pushover, ntfy = FakePushover(), FakeNtfy()
    pushover.answers += [Answer(500, "down")] * 10  # both channels fail and wait for a retry
    ntfy.statuses += [503] * 10
    channels = [PushoverChannel(PushoverClient("a" * 30, "u" * 30, pushover.url)),
                AppriseChannel("ntfy", ntfy.url, pace_s=0)]
    main = build(Config(console_port=0, web_enabled=True, web_port=0), clock, [spec("weather", sunny, 300)],
                 channels=channels, logs=logs)
    main.start()
    try:
        notify = main.notifier.for_module(get_logger("autohome.modules.weather"))
        with log_seen("notification 1 from weather not delivered") as phone, \
                log_seen("notification 2 from weather not delivered") as ntfy_failed:
            notify("to both")  # 1 to Pushover, 2 to ntfy
            notify("to the phone only", to=["pushover"])  # 3, behind 1
            assert phone.wait() and ntfy_failed.wait()
        assert main.web is not None
        page = Browser(main.web.port).get("/").body
        assert ("<dt>notifications waiting</dt><dd>3 (pushover 2, retrying: Pushover answered 500: down; "
                "ntfy 1, retrying: ntfy: ") in page
        client = ConsoleClient(console_port(main))
        status = client.command("status")
        client.close()
        assert "pushover 2, retrying: Pushover answered 500: down; ntfy 1, retrying: ntfy:" in status
    finally:
        main.shutdown()
        pushover.close()
        ntfy.close()


def test_an_off_module_has_no_run_or_pause_and_its_hint_is_no_error(console_factory, logs: LogSetup) -> None:
    main = console_factory(spec("needy", sunny, requires=("SOME_URL",)), logs=logs, web_enabled=True,
                           web_port=0)
    assert main.web is not None
    browser = Browser(main.web.port)
    page = browser.get("/").body
    row = page[page.index('id="module-needy"'):page.index("</tr>", page.index('id="module-needy"'))]
    assert 'data-state="off"' in row and '<div class="why off">off: set SOME_URL' in row
    assert "run needy now" not in row and "pause needy" not in row


def test_the_timeline_s_last_hour_label_is_not_cut(browser: Browser) -> None:
    svg = browser.get("/live?span=24h").body
    labels = re.findall(r'<text class="axis" x="([\d.]+)" y="\d+" text-anchor="(\w+)">', svg)
    width = float(re.search(r'<svg class="timeline" viewBox="0 0 (\d+)', svg).group(1))  # type: ignore[union-attr]
    assert labels
    for x, anchor in labels:  # a label of about 30 px centred on x, or ending there
        assert anchor == "end" or float(x) + 20 <= width, (x, anchor, width)


def test_the_timeline_draws_skipped_runs_and_each_kind_of_gap_apart(browser: Browser, main: Main) -> None:
    from datetime import timedelta

    from autohome.storage.state import Outcome, RunRecord

    now = main.clock.now()
    skipped = RunRecord(now - timedelta(minutes=50), 0.0, "offline", Outcome.SKIPPED)
    main.states.record_skip("weather", skipped)
    main.states.flush()
    for hours, kind in ((6, "asleep"), (4, "stopped"), (2, "crashed")):
        main.times.slept(now - timedelta(hours=hours), now - timedelta(hours=hours - 1), kind)
    svg = browser.get("/live?span=24h").body
    assert 'class="mark skipped"' in svg and "skipped: offline" in svg
    for kind, title in (("asleep", "asleep or suspended"), ("stopped", "AutoHome was stopped (a clean stop)"),
                        ("crashed", "AutoHome stopped without a clean stop")):
        assert f'class="gap {kind}"' in svg and title in svg
