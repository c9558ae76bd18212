"""The outbox: queued at once, delivered in order exactly once, retried as Pushover asks."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import clean_env, free_port
from support.pushover import Answer, FakePushover

from autohome.logs.tree import get_logger
from autohome.notifications.channels import PushoverChannel
from autohome.notifications.notifier import Notifier
from autohome.notifications.outbox import Outbox, retry_delay
from autohome.notifications.pushover import PushoverClient
from autohome.storage.db import Database, open_database

TOKEN, USER = "a" * 30, "u" * 30
ALARM = '''
    INTERVAL = "1d"
    def run(log, notify):
        notify("the cellar is flooding", title="Alarm")
'''  # a module that notifies once a day
log = get_logger("autohome.modules.test")


def make_outbox(url: str | None, clock: FakeClock, db: Database | None = None,
                timeout_s: float = 10.0) -> Outbox:
    client = None if url is None else PushoverClient(TOKEN, USER, url, timeout_s=timeout_s)
    return Outbox(db or Database.in_memory(), [] if client is None else [PushoverChannel(client)], clock)


def states(outbox: Outbox) -> list[tuple[str, str]]:
    return [(row.fields["message"], row.state) for row in reversed(outbox.listing(100))]


def test_notify_queues_and_returns_without_touching_the_network(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(pushover.url, clock)
    notify = Notifier(outbox).for_module(log)
    assert notify("one") and notify("two", title="second")
    assert notify("") is False and notify("x", priority=9) is False
    assert not pushover.requests
    assert states(outbox) == [("one", "pending"), ("two", "pending")]
    assert outbox.deliver_due(clock.now()) is None
    assert [r.form["message"] for r in pushover.requests] == ["one", "two"]
    assert states(outbox) == [("one", "sent"), ("two", "sent")]


def test_a_4xx_is_kept_as_failed_and_never_retried(pushover: FakePushover, caplog) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(pushover.url, clock)
    pushover.answers.append(pushover.refuse(400, "application token is invalid", field_name="token"))
    notify = Notifier(outbox).for_module(log)
    notify("refused")
    notify("next")
    outbox.deliver_due(clock.now())
    clock.advance(3600)
    outbox.deliver_due(clock.now())
    assert [r.form["message"] for r in pushover.requests] == ["refused", "next"]
    [_, refused] = outbox.listing(2)
    assert refused.state == "failed" and refused.last_error == (
        "Pushover answered 400: application token is invalid")
    assert "refused, not retried: Pushover answered 400: application token is invalid" in caplog.text


def test_a_5xx_is_retried_with_backoff_on_the_clock_and_order_is_kept(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(pushover.url, clock)
    pushover.answers += [Answer(503, "busy"), Answer(502, "busy")]
    notify = Notifier(outbox).for_module(log)
    notify("first")
    notify("second")
    assert outbox.deliver_due(clock.now()) == T0 + timedelta(seconds=5)
    clock.advance(4.9)
    assert outbox.deliver_due(clock.now()) == T0 + timedelta(seconds=5)  # not yet: no request
    assert len(pushover.requests) == 1
    clock.advance(0.1)
    assert outbox.deliver_due(clock.now()) == T0 + timedelta(seconds=15)  # 2nd failure: 10 s more
    clock.advance(10)
    assert outbox.deliver_due(clock.now()) is None
    assert [r.form["message"] for r in pushover.requests] == ["first", "first", "first", "second"]
    assert states(outbox) == [("first", "sent"), ("second", "sent")]
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 20)] == [5, 10, 20, 3600]


def test_a_429_waits_for_the_reset_time(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    reset = int((T0 + timedelta(hours=6)).timestamp())
    pushover.answers.append(Answer(429, {"status": 0, "errors": ["over quota"]},
                                   {"X-Limit-App-Remaining": "0", "X-Limit-App-Reset": str(reset)}))
    outbox = make_outbox(pushover.url, clock)
    Notifier(outbox).for_module(log)("later")
    assert outbox.deliver_due(clock.now()) == T0 + timedelta(hours=6)
    assert outbox.quota is not None and outbox.quota.remaining == 0
    clock.advance(6 * 3600)
    assert outbox.deliver_due(clock.now()) is None
    assert states(outbox) == [("later", "sent")]
    assert outbox.quota.remaining == 9876


def test_no_network_for_a_while_then_delivery_once_it_listens() -> None:
    clock = FakeClock(T0)
    port = free_port()
    outbox = make_outbox(f"http://127.0.0.1:{port}/1/messages.json", clock)
    Notifier(outbox).for_module(log)("disk full")
    for _ in range(3):
        next_try = outbox.deliver_due(clock.now())
        assert next_try is not None
        clock.current = next_try
    assert outbox.listing(1)[0].attempts == 3
    assert "cannot reach Pushover" in (outbox.listing(1)[0].last_error or "")
    server = FakePushover(port=port)
    try:
        assert outbox.deliver_due(clock.now()) is None
        assert len(server.requests) == 1
    finally:
        server.close()


def test_a_hanging_server_times_out_and_is_retried(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    held = threading.Event()
    pushover.answers.append(Answer(hold=held))
    outbox = make_outbox(pushover.url, clock, timeout_s=0.2)
    Notifier(outbox).for_module(log)("slow")
    try:
        assert outbox.deliver_due(clock.now()) == T0 + timedelta(seconds=5)
    finally:
        held.set()
    assert "no answer from Pushover within 0.2s" in (outbox.listing(1)[0].last_error or "")
    clock.advance(5)
    outbox.deliver_due(clock.now())
    assert states(outbox) == [("slow", "sent")]


def test_without_keys_messages_are_kept_and_sent_once_configured(tmp_path: Path, pushover) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(None, clock, open_database(tmp_path))
    assert Notifier(outbox).for_module(log)("kept") is True
    assert states(outbox) == [("kept", "undeliverable")]
    outbox.table.db.close()
    configured = make_outbox(pushover.url, clock, open_database(tmp_path))
    configured.start()
    try:
        pushover.wait_for_requests(1)
    finally:
        configured.stop()
    assert [r.form["message"] for r in pushover.requests] == ["kept"]


def test_a_message_caught_mid_send_is_never_sent_twice(tmp_path: Path, pushover) -> None:
    clock = FakeClock(T0)
    db = open_database(tmp_path)
    outbox = make_outbox(pushover.url, clock, db)
    Notifier(outbox).for_module(log)("maybe")
    outbox.table.update(outbox.listing(1)[0].id, state="sending")  # as a crash would leave it
    db.close()
    again = make_outbox(pushover.url, clock, open_database(tmp_path))
    again.start()
    again.stop()
    assert not pushover.requests
    [row] = again.listing(1)
    assert row.state == "uncertain" and "may or may not have arrived" in (row.last_error or "")


def test_the_sender_thread_delivers_while_modules_never_wait(pushover: FakePushover) -> None:
    from autohome.clock import SystemClock

    held = threading.Event()
    pushover.answers.append(Answer(hold=held))
    outbox = make_outbox(pushover.url, SystemClock())  # type: ignore[arg-type]
    outbox.start()
    try:
        notify = Notifier(outbox).for_module(log)
        notify("slow API")
        pushover.wait_for_requests(1)  # the sender is stuck on the slow answer...
        assert notify("still instant")  # ...and a module's notify returns at once anyway
        held.set()
        pushover.wait_for_requests(2)
    finally:
        outbox.stop()
    assert [r.form["message"] for r in pushover.requests] == ["slow API", "still instant"]


def test_pending_messages_are_delivered_after_a_restart_exactly_once(tmp_path: Path, daemon_factory,
                                                                    process_factory) -> None:
    write_module(tmp_path / "modules", "alarm", ALARM)
    dead_url = f"http://127.0.0.1:{free_port()}/1/messages.json"
    # (AUTOHOME_NOTIFY_ON_FAILURE=off: the kill -9 is said at the restart by an alert of its own.)
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=dead_url,
                    AUTOHOME_NOTIFY_ON_FAILURE="off")
    first = process_factory(tmp_path, "-t", "--notify", "--no-console", "--start", "2026-06-01T09:00",
                            env=env)
    first.wait_for("not delivered \\(attempt 1\\): cannot reach Pushover")
    first.process.kill()  # kill -9 while the message waits for its retry
    first.wait()

    server = FakePushover()
    try:
        env["PUSHOVER_API_URL"] = server.url
        second = daemon_factory(tmp_path, "-t", "--notify", "--port", "0", "--start", "2026-06-01T10:00",
                                env=env)
        server.wait_for_requests(1)
        client = ConsoleClient(second.console_port)
        second.wait_for_all("sent \\(request req-ok\\)")  # before or after the console line
        listing = client.command("notifications")
        assert "sent" in listing and "the cellar is flooding" in listing and "alarm" in listing
        status = client.command("status")
        assert "1 sent" in status and "of 10000 messages left this month" in status
        client.sock.sendall(b"shutdown\r\n")
        client.read_all()
        assert second.wait() == 0
        assert len(server.requests) == 1
        assert server.requests[0].form["title"] == "Alarm"
    finally:
        server.close()


def test_notify_test_from_the_console_and_failure_alerts(tmp_path: Path, daemon_factory, pushover) -> None:
    write_module(tmp_path / "modules", "flaky", '''
        INTERVAL = 30
        def run(log, notify, store):
            runs = store.get("runs", 0) + 1
            store.set("runs", runs)
            if runs in (2, 3):
                raise RuntimeError("sensor offline")
    ''')
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url)
    daemon = daemon_factory(tmp_path, "-t", "--notify", "--port", "0", env=env)
    client = ConsoleClient(daemon.console_port)
    assert "queued" in client.command("notify test hello phone")
    pushover.wait_for_requests(1)
    daemon.send("3\n")  # runs 2 and 3 fail, run 4 recovers: two alerts, not three
    daemon.wait_for("module flaky finished")
    pushover.wait_for_requests(3)
    client.command("help")
    messages = [r.form["message"] for r in pushover.requests]
    assert messages == ["hello phone", "flaky failed: RuntimeError: sensor offline", "flaky works again"]
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_failure_alerts_can_be_switched_off(tmp_path: Path, pushover) -> None:
    from support.processes import run_autohome

    write_module(tmp_path / "modules", "boom", """
        INTERVAL = 30
        def run(log, notify):
            raise ValueError("x")
    """)
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url,
                    AUTOHOME_NOTIFY_ON_FAILURE="off")
    assert run_autohome(tmp_path, "-t", "--notify", "--no-console", stdin="\n", env=env).returncode == 0
    assert not pushover.requests


def test_in_test_mode_a_retry_follows_virtual_time(tmp_path: Path, daemon_factory, pushover) -> None:
    # Over quota until 10:00 virtual time: the retry must come when virtual time passes it,
    # not an hour of real time later.
    write_module(tmp_path / "modules", "alarm", '''
        INTERVAL = "1d"
        def run(log, notify):
            notify("the cellar is flooding")
    ''')
    reset = int(datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc).timestamp())
    pushover.answers.append(Answer(429, {"status": 0, "errors": ["over quota"]},
                                   {"X-Limit-App-Remaining": "0", "X-Limit-App-Reset": str(reset)}))
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url,
                    TZ="UTC", AUTOHOME_TIMEZONE="UTC", AUTOHOME_LOG_LEVEL="DEBUG")
    daemon = daemon_factory(tmp_path, "-t", "--notify", "--no-console", "--start", "2026-06-01T09:00",
                            env=env)
    daemon.wait_for("not delivered \\(attempt 1\\).*retrying at 2026-06-01T10:00:00")
    daemon.send("30m\n")
    daemon.wait_for("tick at 2026-06-01T09:30:00")
    assert len(pushover.requests) == 1  # still over quota: nothing more was sent
    daemon.send("31m\n")
    daemon.wait_for("tick at 2026-06-01T10:00:00")
    pushover.wait_for_requests(2)
    daemon.wait_for("notification 1 from alarm sent")
    daemon.close_stdin()
    assert daemon.wait() == 0
    assert len(pushover.requests) == 2


def test_the_sender_retries_when_its_clock_reaches_the_retry_with_no_tick_to_poke_it(
        pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(pushover.url, clock)
    pushover.answers.append(Answer(503, "busy"))
    outbox.start()
    try:
        assert Notifier(outbox).for_module(log)("retry me")
        pushover.wait_for_requests(1)
        assert clock.wait_for_waiters(1, WAIT_S)  # the sender waits for its retry, on the clock
        clock.advance(4)
        assert clock.wait_for_waiters(1, WAIT_S) and len(pushover.requests) == 1  # not yet due
        clock.advance(1)  # 5 s after the failure: the sender wakes on the clock alone
        pushover.wait_for_requests(2)
    finally:
        outbox.stop()
    assert [r.form["message"] for r in pushover.requests] == ["retry me", "retry me"]


def test_notify_never_raises_into_a_module_when_the_database_fails(caplog) -> None:
    db = Database.in_memory()
    outbox = make_outbox(None, FakeClock(T0), db)
    db.close()  # every write now fails, as on a vanished disk
    with caplog.at_level(logging.WARNING):
        assert Notifier(outbox).for_module(log)("the cellar is flooding") is True  # kept in memory
    kept = next(r for r in caplog.records if "state database cannot take it" in r.getMessage())
    assert "kept in memory" in kept.getMessage() and outbox.counts()["kept in memory"] == 1


def test_a_message_carries_the_time_it_was_queued_and_can_be_read_and_resent(
        pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = make_outbox(pushover.url, clock)
    pushover.answers.append(pushover.refuse(400, "user identifier is invalid"))
    notify = Notifier(outbox).for_module(log)
    assert notify("the cellar is flooding", title="Alarm")
    clock.advance(3600)  # delivered an hour late: the phone still shows when it happened
    outbox.deliver_due(clock.now())
    [refused] = pushover.wait_for_requests(1)
    assert refused.form["timestamp"] == str(int(T0.timestamp()))
    [row] = outbox.listing(1)
    assert row.state == "failed"
    assert outbox.resend(row.id) == f"notification {row.id} queued again"
    assert outbox.resend(row.id).endswith("only a failed, uncertain or undeliverable one is sent again")
    outbox.deliver_due(clock.now())
    [_, resent] = pushover.wait_for_requests(2)
    assert resent.form["timestamp"] == str(int(T0.timestamp()))
    assert outbox.get(row.id).state == "sent"  # type: ignore[union-attr]
    assert outbox.resend(999).startswith("no notification 999")


def test_notifications_read_and_resend_from_the_console(tmp_path: Path, daemon_factory, pushover) -> None:
    write_module(tmp_path / "modules", "alarm", ALARM)
    pushover.answers.append(pushover.refuse(400, "application token is invalid", field_name="token"))
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url)
    daemon = daemon_factory(tmp_path, "-t", "--notify", "--port", "0", "--start", "2026-06-01T09:00", env=env)
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for_all("refused, not retried: Pushover answered 400: application token is invalid")
    table = client.command("notifications")
    assert "QUEUED" in table and "SENT" in table and "failed" in table
    answer = client.command("notifications read 1")
    assert "notification 1 from alarm: failed, 1 tries" in answer
    assert "error:     Pushover answered 400: application token is invalid" in answer and "title:" in answer
    assert client.command("notifications resend 1").strip() == "notification 1 queued again"
    daemon.wait_for("notification 1 from alarm sent")
    assert "usage: notifications" in client.command("notifications read x")
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_test_mode_keeps_and_shows_notifications_but_sends_nothing(tmp_path: Path, daemon_factory,
                                                                    pushover) -> None:
    write_module(tmp_path / "modules", "alarm", ALARM)
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0", env=env)
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for_all("notification 1 from alarm not sent: test mode sends nothing")
    assert " test " in client.command("notifications")
    assert client.command("notify test").strip().startswith("kept, not sent: test mode sends nothing")
    assert "test mode sends nothing" in client.command("notifications resend 1")
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    assert pushover.requests == []  # virtual time never rang the phone


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_two_threads_waiting_on_the_clock_sleep_and_do_not_wake_each_other() -> None:
    # The notification sender and the run watchdog both wait on the daemon's clock; once each
    # woke the other on every wake-up, so an idle AutoHome with Pushover set spun two cores.
    clock = FakeClock(T0)
    alarms = [clock.alarm(), clock.alarm()]
    ids: list[int] = []

    def wait(alarm) -> None:
        ids.append(threading.get_native_id())
        clock.wait_until(T0 + timedelta(hours=1), alarm)

    threads = [threading.Thread(target=wait, args=(alarm,)) for alarm in alarms]
    for thread in threads:
        thread.start()
    try:
        assert clock.wait_for_waiters(2, WAIT_S)

        def switches() -> int:
            return sum(int(line.split()[1]) for tid in ids
                       for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines()
                       if line.startswith("voluntary_ctxt_switches"))

        before = switches()
        threading.Event().wait(0.2)  # a window to watch them in, not a synchronisation
        assert switches() - before < 10  # asleep: spinning makes thousands
    finally:
        for alarm in alarms:
            alarm.raise_()
        for thread in threads:
            thread.join(WAIT_S)


def test_notifications_done_with_are_pruned_without_pushover_too(clock: FakeClock) -> None:
    from support.modules import make_main, spec

    def flood(log, notify):
        for number in range(12_345):
            notify(f"flood {number}")

    main = make_main(clock, spec("flood", flood, interval_s=86400 * 60), notify_max_per_hour=100_000)
    main.tick(clock.now())
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert main.outbox.counts() == {"undeliverable": 10_345}  # a flood is pruned as it comes
    assert main.outbox.listing(1)[0].fields["message"] == "flood 12344"
    clock.advance(86400)
    main.tick(clock.now())  # the day's pruning: the newest 10,000
    assert main.outbox.counts() == {"undeliverable": 10_000}
    clock.advance(30 * 86400)  # a month later, the day's pruning forgets them all
    main.tick(clock.now())
    assert main.outbox.counts() == {}
    main.shutdown()
