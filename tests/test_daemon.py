"""The daemon as build() wires it, with a FakeClock: ticks, failures, pause, manual runs, shutdown."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.logs import log_seen
from support.modules import make_main, spec

from autohome.catalog.loader import BrokenModule
from autohome.control.commands import Commands


def test_a_failing_module_is_logged_with_traceback_and_others_still_run(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ran = threading.Event()

    def boom(log, notify):
        raise ValueError("sensor unplugged")

    main = make_main(clock, spec("boom", boom), spec("fine", lambda log, notify: ran.set()))
    with caplog.at_level(logging.INFO):
        assert sorted(main.tick(clock.now())) == ["boom", "fine"]
        assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert ran.is_set()
    failure = next(r for r in caplog.records if r.name == "autohome.modules.boom")
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    assert "sensor unplugged" in caplog.text and "Traceback" in caplog.text
    status = main.states.get("boom")
    assert status.last_run is not None and status.last_run.error == "ValueError: sensor unplugged"
    assert main.states.get("fine").last_run.is_ok


def test_sys_exit_in_a_module_is_only_that_module_failing(clock: FakeClock) -> None:
    def quits(log, notify):
        raise SystemExit(3)

    main = make_main(clock, spec("quits", quits))
    main.tick(clock.now())
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert main.states.get("quits").last_run.error == "SystemExit: 3"


def test_a_module_still_running_is_not_queued_again(clock: FakeClock) -> None:
    release = threading.Event()
    runs = []

    def slow(log, notify):
        runs.append(clock.now())
        release.wait(WAIT_S)

    main = make_main(clock, spec("slow", slow, interval_s=30))
    assert main.tick(clock.now()) == ["slow"]
    clock.advance(30)
    assert main.tick(clock.now()) == []
    release.set()
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    clock.advance(30)
    assert main.tick(clock.now()) == ["slow"]


def test_pause_stops_scheduled_runs_and_start_resumes_them(clock: FakeClock) -> None:
    main = make_main(clock, spec("m", lambda log, notify: None, interval_s=30))
    assert main.panel.set_paused("m", True) == "m paused"
    assert main.panel.set_paused("m", True) == "m is already paused"
    assert main.tick(clock.now()) == []
    assert [v.state for v in main.panel.module_views()] == ["paused"]
    assert main.panel.set_paused("m", False) == "m resumed"
    assert main.tick(clock.now()) == ["m"]


def test_run_now_goes_through_the_thread_cap(clock: FakeClock) -> None:
    release = threading.Event()
    main = make_main(
        clock,
        spec("a", lambda log, notify: release.wait(WAIT_S)),
        spec("b", lambda log, notify: None, interval_s=3600),
        max_threads=1,
    )
    main.tick(clock.now())
    assert main.runner.snapshot().running == ("a",)
    assert main.panel.run_now("a") == "a not started: already running or queued"
    main.runner.wait_idle(timeout_s=0)  # b is queued behind a
    assert [v.state for v in main.panel.module_views()] == ["running", "queued"]
    release.set()
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert main.panel.run_now("b") == "b started"
    assert main.panel.run_now("nope") == "no module named 'nope'"


def test_broken_modules_are_listed_and_cannot_run(clock: FakeClock) -> None:
    broken = BrokenModule("bad", Path("modules/bad.py"), "INTERVAL is missing")
    main = make_main(clock, broken)
    view = main.panel.module_views()[0]
    assert view.state == "broken" and view.problem == "INTERVAL is missing"
    assert "broken" in main.panel.run_now("bad")
    assert main.tick(clock.now()) == []


def test_shutdown_lets_runs_finish_and_drops_the_backlog_by_name(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    release, started = threading.Event(), threading.Event()
    finished = []

    def slow(log, notify):
        started.set()
        release.wait(WAIT_S)
        finished.append("slow")

    main = make_main(clock, spec("slow", slow), spec("waiting", lambda log, notify: None), max_threads=1)
    main.tick(clock.now())
    assert started.wait(WAIT_S)
    with caplog.at_level(logging.INFO):
        stopper = threading.Thread(target=main.shutdown)
        stopper.start()
        # once the backlog is dropped, let the run finish in its grace
        assert main.runner.wait_for(lambda runner: runner.is_closed, WAIT_S)
        release.set()
        stopper.join(WAIT_S)
    assert finished == ["slow"]
    assert "dropped from the backlog at shutdown: waiting" in caplog.text
    assert "abandoned" not in caplog.text


def test_a_run_past_the_grace_period_is_logged(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    release, started = threading.Event(), threading.Event()

    def stuck(log, notify):
        started.set()
        release.wait(WAIT_S)

    main = make_main(clock, spec("stuck", stuck), grace_s=0.05)
    main.tick(clock.now())
    assert started.wait(WAIT_S)
    with caplog.at_level(logging.WARNING):
        main.shutdown()
    release.set()
    assert "still running after the 0.05s grace period, abandoned: stuck" in caplog.text


def test_run_loop_ticks_on_the_clock_until_stopped(clock: FakeClock) -> None:
    runs = []

    def stop_after_three(log, notify):
        if len(runs) == 3:
            main.request_stop()

    main = make_main(clock, spec("m", lambda log, notify: runs.append(clock.now()), interval_s=60),
                     spec("stopper", stop_after_three, 30), settle=True, tick=timedelta(seconds=30))
    main.run()
    assert [(t - T0).total_seconds() for t in runs] == [0, 60, 120]


def test_a_clock_that_jumps_back_does_not_stall_schedules(clock: FakeClock,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    runs = []

    def hourly(log, notify):
        runs.append(clock.now())
        if len(runs) == 1:
            clock.advance(-3 * 3600)  # the clock is corrected three hours back mid-run
        if len(runs) == 3:
            main.request_stop()

    main = make_main(clock, spec("hourly", hourly, interval_s=3600), settle=True, tick=timedelta(minutes=30))
    with caplog.at_level(logging.WARNING):
        main.run()
    assert "the clock went back by 3h; schedules now count from the present (hourly)" in caplog.text
    # Runs go on an hour apart from the corrected time, not three hours later.
    assert [(t - runs[0]).total_seconds() / 3600 for t in runs] == [0, -2, -1]


def test_a_run_past_its_timeout_is_flagged_at_the_timeout_and_stored_as_overrun(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    release, started = threading.Event(), threading.Event()

    def slow_run(log, notify):
        started.set()
        release.wait(WAIT_S)

    main = make_main(clock, spec("slow", slow_run, timeout=timedelta(minutes=1)))
    main.tick(clock.now())
    assert started.wait(WAIT_S)
    assert clock.wait_for_waiters(1, WAIT_S)  # the watchdog waits for the TIMEOUT, on the clock
    clock.advance(59)
    assert clock.wait_for_waiters(1, WAIT_S)
    assert [v.state for v in main.panel.module_views()] == ["running"]
    with log_seen("is overrunning") as flagged:
        clock.advance(2)  # past the TIMEOUT, and no tick: the watchdog notices by itself
        assert flagged.wait()
        assert clock.wait_for_waiters(1, WAIT_S)
    [warning] = flagged.records
    assert "set ISOLATE = True in its file to let AutoHome stop it" in warning.getMessage()
    assert [v.state for v in main.panel.module_views()] == ["overrun"]
    started_at = clock.now() - timedelta(seconds=61)
    read = Commands(main.panel).execute("modules read slow").text
    assert f"running since {started_at:%Y-%m-%d %H:%M:%S}" in read
    release.set()
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert [v.state for v in main.panel.module_views()] == ["idle"]
    assert "running since" not in Commands(main.panel).execute("modules read slow").text
    [run] = main.states.history("slow", 10)
    assert run.how == "overrun" and run.is_ok


def test_the_default_timeout_comes_from_the_config(clock: FakeClock) -> None:
    main = make_main(clock, spec("m", lambda log, notify: None))
    assert main.panel.module_views()[0].timeout == timedelta(minutes=10)


def test_a_module_missing_its_settings_is_off(clock: FakeClock) -> None:
    needy = spec("needy", lambda log, notify: None, requires=("MY_URLS",))
    main = make_main(clock, needy)
    assert main.tick(clock.now()) == []
    [view] = main.panel.module_views()
    assert view.state == "off" and view.problem == "off: set MY_URLS in .env to turn it on"
    assert main.panel.run_now("needy") == "needy is off: set MY_URLS in .env to turn it on"
    configured = make_main(clock, needy, settings={"MY_URLS": "http://x"})
    assert configured.tick(clock.now()) == ["needy"]


def test_a_database_that_fails_leaves_the_ticks_going_and_is_said_once(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    # The first run closes the database: every write after it fails, as on a vanished disk.
    runs: list[object] = []

    def closer(log, notify):
        runs.append(clock.now())
        if len(runs) == 1:
            main.states.db.close()
        if len(runs) == 4:
            main.request_stop()

    main = make_main(clock, spec("m", closer, interval_s=30), settle=True)
    with caplog.at_level(logging.INFO):
        main.run()
    assert len(runs) == 4  # before: every tick after the first failed, and nothing ran
    assert [(t - T0).total_seconds() for t in runs] == [0, 30, 60, 90]  # type: ignore[operator]
    said = [r for r in caplog.records if "cannot write its state database" in r.getMessage()]
    assert len(said) == 1 and "keeps running and tries again" not in caplog.text
