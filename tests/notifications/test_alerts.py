"""Alerts people can live with: ALERT_AFTER, ALERT = "never", flapping, emergencies followed
and cancelled, quiet hours, and no floods."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from support.clock import T0, WAIT_S, FakeClock
from support.modules import make_main, settle, spec, write_module
from support.processes import clean_env
from support.pushover import FakePushover

from autohome.app import build
from autohome.catalog.loader import AlertRule
from autohome.config import Config
from autohome.notifications.channels import PushoverChannel
from autohome.notifications.notifier import Notifier
from autohome.notifications.outbox import Outbox
from autohome.notifications.pushover import PushoverClient
from autohome.storage.db import Database, open_database

TOKEN, USER = "a" * 30, "u" * 30


def scripted_failures(outcomes: str):
    """A module whose runs fail ('x') or work ('.') in this order."""
    left = list(outcomes)

    def run(log, notify):
        if left.pop(0) == "x":
            raise RuntimeError("sensor offline")
    return run


ALWAYS = AlertRule()


def alerts_after(outcomes: str, rule: AlertRule = ALWAYS, every_s: int = 60) -> list[str]:
    clock = FakeClock(T0)
    main = make_main(clock, spec("sensor", scripted_failures(outcomes), interval_s=every_s, alert=rule))
    for _ in outcomes:
        main.tick(clock.now())
        settle(main)
        clock.advance(every_s)
    messages = [row.fields["message"] for row in reversed(main.outbox.listing(100))]
    main.shutdown()
    return messages


def test_alert_after_three_failed_runs_then_one_recovery() -> None:
    rule = AlertRule(after=3)
    assert alerts_after("xx.", rule) == []  # two failures, then it works: nothing
    assert alerts_after("xxx..", rule) == ["sensor failed (3 runs in a row): RuntimeError: sensor offline",
                                           "sensor works again"]
    assert alerts_after("x.", AlertRule()) == ["sensor failed: RuntimeError: sensor offline",
                                               "sensor works again"]  # the default: today's behaviour


def alerts_across_a_restart(data: Path, lives: list[str], rule: AlertRule = ALWAYS,
                            retries: int = 0, every_s: int = 3600) -> list[str]:
    """Each life a daemon on the same database, its module's tries failing ('x') or working
    ('.') in order; with `retries`, each run is tried that many more times while it fails."""
    now = T0
    for outcomes in lives:
        clock = FakeClock(now)  # each life its own: a thread of the last one may share an id with one of this
        left = list(outcomes)
        run = scripted_failures(outcomes)

        def tried(log, notify, run=run, left=left):
            left.pop(0)
            run(log, notify)

        module = spec("sensor", tried, interval_s=every_s, alert=rule, retries=retries,
                      retry_delay=timedelta(seconds=60))
        config = Config(console_enabled=False, web_enabled=False)
        main = build(config, clock, [module], db=open_database(data))
        while left:
            main.tick(clock.now())
            assert main.runner.wait_idle(timeout_s=WAIT_S)
            for _ in range(retries):  # a failed try comes back after its RETRY_DELAY, doubling
                if not left or main.states.get("sensor").last_run.is_ok:
                    break
                before = len(left)
                assert clock.wait_for_waiters(1, WAIT_S)
                clock.advance(3600)  # past any retry delay; the next scheduled run comes with the tick
                assert main.runner.wait_for(lambda now: len(left) < before, WAIT_S)  # noqa: B023
                assert main.runner.wait_idle(timeout_s=WAIT_S)
            clock.advance(every_s)
        settle(main)
        messages = [row.fields["message"] for row in reversed(main.outbox.listing(100))]
        main.shutdown()
        now = clock.now()
    return messages


def test_a_restart_neither_forgets_failures_in_a_row_nor_alerts_twice(tmp_path: Path) -> None:
    three = AlertRule(after=3)
    failed_3 = "sensor failed (3 runs in a row): RuntimeError: sensor offline"
    # Two failures before the restart and one after: three in a row, one alert.
    assert alerts_across_a_restart(tmp_path / "a", ["xx", "x."], three) == [failed_3, "sensor works again"]
    # Alerted before the restart: still failing after it is no new alert, working is the recovery.
    assert alerts_across_a_restart(tmp_path / "b", ["xxx", "x."], three) == [failed_3, "sensor works again"]
    # A recovery before the restart ends the count.
    assert alerts_across_a_restart(tmp_path / "c", ["xx.", "xx"], three) == []
    # Retried runs: each run's tries count once, before the restart as after it.
    failed = "sensor failed: RuntimeError: sensor offline"
    assert alerts_across_a_restart(tmp_path / "d", ["xx", "xx."], AlertRule(), retries=1) == [
        failed, "sensor works again"]
    assert alerts_across_a_restart(tmp_path / "e", ["xx", "xx"], AlertRule(after=2), retries=1) == [
        "sensor failed (2 runs in a row): RuntimeError: sensor offline"]


def test_a_restart_keeps_a_flapping_module_quiet_until_it_is_steady(tmp_path: Path) -> None:
    messages = alerts_across_a_restart(tmp_path, ["x." * 3, "x." * 2, "." * 62], every_s=60)
    assert [m.split(":")[0] for m in messages] == [
        "sensor failed", "sensor works again", "sensor failed", "sensor works again",
        "sensor is flapping", "sensor has been steady for 1h"]  # nothing while it flips after the restart


def test_alert_never_silences_a_module() -> None:
    assert alerts_after("xxx.", AlertRule(never=True)) == []


def test_a_flapping_module_sends_one_flapping_alert_then_silence_until_steady() -> None:
    messages = alerts_after("x." * 10)  # a flip a minute for twenty minutes
    flapping = [m for m in messages if "flapping" in m]
    assert len(flapping) == 1 and "until it has been steady for 1h" in flapping[0]
    assert messages[-1] == flapping[0]  # nothing after it
    assert len(messages) == 5  # failing, works again, failing, works again, flapping
    steady = alerts_after("x." * 3 + "." * 62)  # then an hour and more without a flip
    assert steady[-1] == "sensor has been steady for 1h: it works"


def test_an_emergency_is_followed_until_acknowledged_and_cancelled_on_recovery(
        pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = Outbox(Database.in_memory(), [PushoverChannel(PushoverClient(TOKEN, USER, pushover.url))], clock)
    notifier = Notifier(outbox)
    rule = AlertRule(priority=2)
    outbox.start()
    try:
        notifier.alerts.after_run("pump", "RuntimeError: no pressure", clock.now(), rule)
        [emergency] = pushover.wait_for_requests(1)
        assert (emergency.form["priority"], emergency.form["retry"], emergency.form["expire"],
                emergency.form["tags"]) == ("2", "60", "3600", "autohome-pump")
        [receipt] = pushover.wait_for(lambda: pushover.polls)  # followed at once...
        pushover.acknowledge(receipt, by="u" * 30, device="phone", at=int(T0.timestamp()) + 30)
        assert clock.wait_for_waiters(1, WAIT_S)
        clock.advance(60)  # ...and again a minute later
        pushover.wait_for(lambda: len(pushover.polls) == 2)
        assert clock.wait_for_waiters(1, WAIT_S)
        [row] = [row for row in outbox.listing(5) if row.receipt]
        assert row.receipt_state == f"acknowledged by {'u' * 30} (phone) at 2026-01-05T12:00:30+00:00"
        notifier.alerts.after_run("pump", None, clock.now(), rule)  # it works again
        pushover.wait_for(lambda: pushover.cancels == ["autohome-pump"])
        messages = [r.form["message"] for r in pushover.wait_for_requests(2)]
        assert messages == ["pump failed: RuntimeError: no pressure", "pump works again"]
    finally:
        outbox.stop()


def test_a_module_notify_with_priority_2_is_followed_too(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    outbox = Outbox(Database.in_memory(), [PushoverChannel(PushoverClient(TOKEN, USER, pushover.url))], clock)
    from autohome.logs.tree import get_logger

    Notifier(outbox).for_module(get_logger("autohome.modules.door"))("door forced", priority=2)
    outbox.deliver_due(clock.now())
    assert outbox.upkeep is not None
    outbox.upkeep.due(clock.now())
    assert len(pushover.polls) == 1 and outbox.listing(1)[0].receipt_state == "waiting"


def test_100_notifications_in_an_hour_arrive_as_the_limit_plus_one_summary(clock: FakeClock) -> None:
    def chatty(log, notify):
        for number in range(100):
            notify(f"page changed ({number})")

    main = make_main(clock, spec("page_watch", chatty, interval_s=86400))
    main.tick(clock.now())
    settle(main)
    assert len(main.outbox.listing(200)) == 20
    clock.advance(3600)
    main.tick(clock.now())
    settle(main)
    messages = [row.fields["message"] for row in reversed(main.outbox.listing(200))]
    assert len(messages) == 21
    assert messages[-1] == "page_watch: 80 more notifications this hour, the last: page changed (99)"
    main.shutdown()


def test_the_same_text_within_10_minutes_is_sent_once_then_once_with_a_count(clock: FakeClock) -> None:
    def nagging(log, notify):
        notify("battery low")

    main = make_main(clock, spec("battery", nagging, interval_s=60))
    for _ in range(11):
        main.tick(clock.now())
        settle(main)
        clock.advance(60)
    main.tick(clock.now())
    messages = [row.fields["message"] for row in reversed(main.outbox.listing(200))]
    assert messages[:2] == ["battery low", "battery low (sent 10 times in 10 minutes)"]
    main.shutdown()


def test_quiet_hours_hold_priority_0_until_they_end_and_let_priority_1_through(
        tmp_path: Path, daemon_factory, pushover: FakePushover) -> None:
    write_module(tmp_path / "modules", "night", '''
        INTERVAL = "1d"
        def run(log, notify):
            notify("the dishwasher is done")
            notify("smoke in the kitchen", priority=1)
    ''')
    env = clean_env(PUSHOVER_TOKEN=TOKEN, PUSHOVER_USER=USER, PUSHOVER_API_URL=pushover.url, TZ="UTC",
                    AUTOHOME_TIMEZONE="UTC", AUTOHOME_QUIET_HOURS="22:00-07:00", AUTOHOME_LOG_LEVEL="DEBUG")
    daemon = daemon_factory(tmp_path, "-t", "--notify", "--no-console", "--start", "2026-06-01T23:00",
                            env=env)
    daemon.wait_for("held for quiet hours until 2026-06-02T07:00")
    [urgent] = pushover.wait_for_requests(1)
    assert urgent.form["message"] == "smoke in the kitchen"
    daemon.send("7h\n")
    daemon.wait_for("tick at 2026-06-02T06:00:00")
    assert len(pushover.requests) == 1  # still quiet
    daemon.send("1h\n")
    [_, held] = pushover.wait_for_requests(2)
    assert held.form["message"] == "the dishwasher is done"
    queued_at = datetime(2026, 6, 1, 23, 0, tzinfo=timezone.utc)
    assert abs(int(held.form["timestamp"]) - queued_at.timestamp()) < 60  # the phone shows 23:00
    daemon.close_stdin()
    assert daemon.wait() == 0
