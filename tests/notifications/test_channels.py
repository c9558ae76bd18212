"""Every channel: Pushover and ntfy (through the real Apprise) side by side, each with its
own delivery state; attachments; and what the daemon imports without channels."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.console import ConsoleClient, console_port
from support.logs import log_seen
from support.modules import write_module
from support.ntfy import FakeNtfy
from support.processes import clean_env, free_port, run_process
from support.pushover import Answer, FakePushover

from autohome.logs.tree import get_logger
from autohome.notifications.channels import AppriseChannel, PushoverChannel
from autohome.notifications.notifier import Notifier
from autohome.notifications.outbox import Outbox
from autohome.notifications.pushover import PushoverClient
from autohome.storage.db import Database

TOKEN, USER = "a" * 30, "u" * 30
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
log = get_logger("autohome.modules.cam")


@pytest.fixture
def ntfy():
    server = FakeNtfy()
    yield server
    server.close()


def both(pushover: FakePushover, ntfy: FakeNtfy, clock: FakeClock) -> Outbox:
    channels = [PushoverChannel(PushoverClient(TOKEN, USER, pushover.url)),
                AppriseChannel("ntfy", ntfy.url, pace_s=0)]
    return Outbox(Database.in_memory(), channels, clock)


def test_a_message_reaches_both_channels_and_a_failing_pushover_does_not_delay_ntfy(
        pushover: FakePushover, ntfy: FakeNtfy) -> None:
    clock = FakeClock(T0)
    pushover.answers += [Answer(500, "down")] * 3
    outbox = both(pushover, ntfy, clock)
    notify = Notifier(outbox).for_module(log)
    outbox.start()
    try:
        assert notify("door opened", title="Hall") and notify("door closed", title="Hall")
        got = ntfy.wait_for_messages(2)  # while Pushover answers 500 and waits for its retry
        assert [(m.topic, m.message, m.title) for m in got] == [("alerts", "door opened", "Hall"),
                                                               ("alerts", "door closed", "Hall")]
        assert len(pushover.wait_for_requests(1)) == 1
        for _ in range(3):  # each retry is due on the clock: 5 s, 10 s, 20 s
            assert clock.wait_for_waiters(1, WAIT_S)
            clock.advance(20)
        sent = [r.form["message"] for r in pushover.wait_for_requests(5)]
        assert sent[-2:] == ["door opened", "door closed"]
    finally:
        outbox.stop()
    rows = {(row.channel, row.fields["message"]): row.state for row in outbox.listing(10)}
    assert set(rows.values()) == {"sent"} and len(rows) == 4
    assert len(ntfy.messages) == 2


def test_ntfy_refusing_is_final_and_its_5xx_is_retried(pushover: FakePushover, ntfy: FakeNtfy) -> None:
    clock = FakeClock(T0)
    outbox = both(pushover, ntfy, clock)
    ntfy.statuses += [400, 503]
    notify = Notifier(outbox).for_module(log)
    notify("refused")
    notify("retried")
    outbox.deliver_due(clock.now(), "ntfy")
    rows = {row.fields["message"]: row for row in outbox.listing(10) if row.channel == "ntfy"}
    assert rows["refused"].state == "failed" and "error=400" in (rows["refused"].last_error or "")
    assert rows["retried"].state == "pending" and rows["retried"].attempts == 1
    clock.advance(5)
    outbox.deliver_due(clock.now(), "ntfy")
    assert [m.message for m in ntfy.messages] == ["retried"]


def test_to_picks_channels_by_name_and_an_unknown_name_is_an_error(pushover, ntfy, caplog) -> None:
    clock = FakeClock(T0)
    outbox = both(pushover, ntfy, clock)
    notify = Notifier(outbox).for_module(log)
    assert notify("only ntfy", to=["ntfy"])
    assert not notify("nowhere", to=["telegram"])
    assert "no channel named telegram; the channels are pushover, ntfy" in caplog.text
    assert [(row.channel, row.fields["message"]) for row in outbox.listing(10)] == [("ntfy", "only ntfy")]


def test_an_attachment_goes_as_multipart_with_its_bytes_and_is_checked_before_queuing(
        pushover: FakePushover, ntfy: FakeNtfy, tmp_path: Path, caplog) -> None:
    clock = FakeClock(T0)
    outbox = both(pushover, ntfy, clock)
    notify = Notifier(outbox).for_module(log)
    assert notify("someone at the door", attachment=PNG, monospace=True, ttl=3600, device="phone")
    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff\xd8\xff" + bytes(5_242_880))
    assert not notify("too big", attachment=big)
    assert f"attachment {big} is 5,242,883 bytes; Pushover takes at most 5,242,880 (5 MB)" in caplog.text
    outbox.deliver_due(clock.now(), "pushover")
    outbox.deliver_due(clock.now(), "ntfy")
    [sent] = pushover.wait_for_requests(1)
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert sent.files["attachment"] == ("attachment.png", PNG, "image/png")
    assert (sent.form["monospace"], sent.form["ttl"], sent.form["device"]) == ("1", "3600", "phone")
    [image] = ntfy.wait_for_messages(1)
    assert image.attachment == PNG  # ntfy carries the image too...
    assert "goes to ntfy without device, ttl, monospace: the channel cannot carry them" in caplog.text


def test_a_restart_in_between_sends_nothing_twice_on_either_channel(tmp_path: Path, process_factory,
                                                                     daemon_factory, ntfy) -> None:
    write_module(tmp_path / "modules", "alarm", '''
        INTERVAL = "1d"
        def run(log, notify):
            notify("the cellar is flooding", title="Alarm")
    ''')
    dead = f"http://127.0.0.1:{free_port()}/1/messages.json"
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=dead,
                    AUTOHOME_NOTIFY_URLS=f"ntfy={ntfy.url}", AUTOHOME_NOTIFY_PACE="0",
                    AUTOHOME_NOTIFY_ON_FAILURE="off")
    first = process_factory(tmp_path, "-t", "--notify", "--no-console", "--start", "2026-06-01T09:00",
                            env=env)
    first.wait_for_all("sent to ntfy", "not delivered \\(attempt 1\\): cannot reach Pushover")
    first.process.kill()  # kill -9: ntfy has it, Pushover's copy waits for its retry
    first.wait()
    server = FakePushover()
    try:
        env["PUSHOVER_API_URL"] = server.url
        second = daemon_factory(tmp_path, "-t", "--notify", "--port", "0", "--start", "2026-06-01T10:00",
                                env=env)
        server.wait_for_requests(1)
        second.wait_for("notification 1 from alarm sent \\(request req-ok\\)")
        client = ConsoleClient(second.console_port)
        listing = client.command("notifications")
        assert "pushover" in listing and "ntfy" in listing
        client.close()
        second.close_stdin()
        assert second.wait() == 0
        assert [r.form["message"] for r in server.requests] == ["the cellar is flooding"]
        assert [m.message for m in ntfy.messages] == ["the cellar is flooding"]
    finally:
        server.close()


def test_a_message_its_channel_keeps_failing_can_be_dropped_from_the_console(ntfy: FakeNtfy) -> None:
    from autohome.app import build
    from autohome.config import Config

    clock = FakeClock(T0)
    ntfy.statuses.append(503)  # the first message fails and waits for its retry; the second behind it
    main = build(Config(console_port=0, web_enabled=False), clock, [],
                 channels=[AppriseChannel("ntfy", ntfy.url, pace_s=0)])
    main.start()
    try:
        notify = main.notifier.for_module(log)
        with log_seen("notification 1 from cam not delivered (attempt 1)") as failed:
            notify("stuck")
            assert failed.wait()
        notify("behind it")
        client = ConsoleClient(console_port(main))
        assert main.outbox.get(2).state == "pending"  # type: ignore[union-attr]
        assert client.command("notifications drop 1").strip() == (
            "notification 1 dropped: the ones after it on ntfy go on")
        assert ntfy.wait_for_messages(1)[0].message == "behind it"  # at once, not at 1's retry time
        answer = client.command("notifications read 1")
        assert "failed" in answer and "given up by hand (notifications drop)" in answer
        assert client.command("notifications drop 1").strip() == (
            "notification 1 is failed: only a pending one can be dropped")
        assert client.command("notifications resend 1").strip() == "notification 1 queued again"
        assert [m.message for m in ntfy.wait_for_messages(2)] == ["behind it", "stuck"]
        assert client.command("notifications drop 9").strip() == "no notification 9, see 'notifications'"
        client.close()
    finally:
        main.shutdown()


def test_start_up_without_channels_does_not_import_apprise(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    env = clean_env(PYTHONPROFILEIMPORTTIME="1")
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "autohome.notifications.outbox" in result.stderr  # the import list is there...
    assert " apprise" not in result.stderr  # ...without Apprise


def test_a_bad_channel_url_is_a_clear_error_at_start(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    env = clean_env(AUTOHOME_NOTIFY_URLS="chat=nosuchservice://x/y")
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n", env=env)
    assert result.returncode != 0
    assert "AUTOHOME_NOTIFY_URLS: Apprise cannot use chat=nosuchservice://x/y: check the URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_pushover_limits_are_read_at_start_and_daily(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = Outbox(Database.in_memory(), [PushoverChannel(PushoverClient(TOKEN, USER, pushover.url))], clock)
    outbox.start()
    try:
        pushover.wait_for(lambda: pushover.limit_reads == 1)
        assert clock.wait_for_waiters(1, WAIT_S)  # the sender read the answer and waits again
        assert outbox.quota is not None and outbox.quota.remaining == 7496
        clock.advance(timedelta(days=1).total_seconds())
        pushover.wait_for(lambda: pushover.limit_reads == 2)
    finally:
        outbox.stop()


def test_an_isolated_run_sends_an_attachment_through_its_parent(tmp_path: Path, daemon_factory,
                                                                 pushover: FakePushover) -> None:
    write_module(tmp_path / "modules", "cam", '''
        INTERVAL = "1d"
        ISOLATE = True
        def run(log, notify):
            image = b"\\x89PNG\\r\\n\\x1a\\nfake image"
            notify("snapshot", attachment=image, monospace=True, to=["pushover"])
    ''')
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url)
    daemon = daemon_factory(tmp_path, "-t", "--notify", "--no-console", env=env)
    [sent] = pushover.wait_for_requests(1)
    assert sent.files["attachment"] == ("attachment.png", b"\x89PNG\r\n\x1a\nfake image", "image/png")
    assert sent.form["monospace"] == "1"
    daemon.close_stdin()
    assert daemon.wait() == 0
