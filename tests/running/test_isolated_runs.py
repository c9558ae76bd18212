"""Isolated runs in child processes, stopping them, retries and jitter."""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.console import ConsoleClient
from support.logs import log_seen
from support.modules import make_main, spec, write_module
from support.processes import clean_env, run_autohome
from support.pushover import FakePushover

from autohome.app import Main, build
from autohome.config import Config

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="process groups and pidfds are POSIX")


def isolated_main(clock: FakeClock, folder: Path, **settings: object) -> Main:
    """The daemon over a folder of module files (isolated runs need files), console off."""
    config = Config(**{"console_enabled": False, "web_enabled": False, "stop_grace": timedelta(seconds=0.3),  # type: ignore[arg-type]
                       "shutdown_grace": timedelta(seconds=0.2), **settings})
    main = build(config._replace(modules_dir=folder), clock)
    main.registry.load()
    return main


def wait_until_gone(pid: int) -> bool:
    """Wait (on the kernel's word, not by polling) until the process has exited."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], WAIT_S)[0])
    finally:
        os.close(handle)


@posix_only
@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
def test_an_isolated_run_past_its_timeout_is_killed_with_its_children_and_the_slot_freed(
        tmp_path: Path, clock: FakeClock) -> None:
    write_module(tmp_path, "sleeper", """
        import signal, subprocess, sys, threading
        ISOLATE = True
        TIMEOUT = "2s"
        INTERVAL = 60
        def run(log):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # it will need SIGKILL
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            log.info("grandchild %d", child.pid)
            threading.Event().wait()
    """)
    main = isolated_main(clock, tmp_path)
    with log_seen("grandchild") as spawned:
        main.tick(clock.now())
        assert spawned.wait()
    grandchild = int(next(r for r in spawned.records).getMessage().split()[-1])
    assert clock.wait_for_waiters(1, WAIT_S)
    with log_seen("stopping its run at its TIMEOUT of 2s") as stopping:
        clock.advance(2)
        assert stopping.wait()
    assert main.runner.wait_idle(timeout_s=WAIT_S)  # SIGTERM ignored: SIGKILL after the 0.3 s grace
    assert wait_until_gone(grandchild)
    [run] = main.states.history("sleeper", 10)
    assert run.how == "timeout" and run.error == "timeout after 2s"
    assert main.panel.run_now("sleeper") == "sleeper started"  # the slot is free again
    main.shutdown()  # stops the isolated run still going after the grace period
    assert [run.how for run in main.states.history("sleeper", 10)] == ["stopped", "timeout"]


@posix_only
def test_modules_stop_stops_an_isolated_run_and_explains_a_thread_run(
        tmp_path: Path, clock: FakeClock) -> None:
    write_module(tmp_path / "modules", "sleeper", """
        import threading
        ISOLATE = True
        INTERVAL = 60
        def run(log):
            print("ready", flush=True)
            threading.Event().wait()
    """)
    write_module(tmp_path / "modules", "stuck", """
        import threading
        INTERVAL = 60
        release = threading.Event()
        def run(log):
            release.wait(15)
    """)
    config = Config(console_port=0, stop_grace=timedelta(seconds=0.3), web_enabled=False)
    main = build(config._replace(modules_dir=tmp_path / "modules"), clock)
    main.start()
    try:
        client = ConsoleClient(main.console.address[1])  # type: ignore[union-attr]
        with log_seen("out: ready") as ready:
            main.tick(clock.now())
            assert ready.wait()
        assert "RUNS IN" in client.command("modules") and "process" in client.command("modules")
        assert client.command("modules stop sleeper").startswith("stopping sleeper: SIGTERM now")
        answer = client.command("modules stop stuck")
        assert "which Python cannot stop; set ISOLATE = True" in answer
        assert main.runner.wait_for(lambda now: "sleeper" not in now.running, WAIT_S)
        [run] = main.states.history("sleeper", 10)
        assert run.how == "stopped" and "stopped: stopped from the console" in client.command(
            "modules read sleeper")
        assert client.command("modules stop sleeper").strip() == "sleeper is not running"
        client.close()
    finally:
        sys.modules["autohome_modules.stuck"].release.set()
        main.shutdown()


def test_an_isolated_module_logs_prints_notifies_and_stores_across_restarts(
        tmp_path: Path, pushover: FakePushover) -> None:
    write_module(tmp_path / "modules", "_shared", 'WORD = "seven"\n')
    write_module(tmp_path / "modules", "iso", """
        import subprocess, sys
        import _shared
        ISOLATE = True
        INTERVAL = "1d"
        def run(log, notify, store, config):
            count = store.get("count", 0) + 1
            store.set("count", count)
            log.info("run number %d, setting %s, helper %s", count, config["MY_SETTING"], _shared.WORD)
            print("printed by the module")
            subprocess.run([sys.executable, "-c", "print('printed by its subprocess')"], check=True)
            assert notify(f"run {count}", title="from a child")
    """)
    env = clean_env(MY_SETTING="seven", PUSHOVER_TOKEN="a" * 30, PUSHOVER_USER="u" * 30,
                    PUSHOVER_API_URL=pushover.url)
    for start in ("2026-06-01T09:00", "2026-06-03T09:00"):
        result = run_autohome(tmp_path, "-t", "--notify", "--no-console", "--start", start, env=env)
        assert result.returncode == 0, result.stderr
    log = (tmp_path / "logs" / "test.log").read_text()
    assert "[module:iso] autohome.modules.iso: run number 1, setting seven, helper seven" in log
    assert "run number 2, setting seven" in log
    assert "autohome.modules.iso: out: printed by the module" in log
    assert "autohome.modules.iso: out: printed by its subprocess" in log
    requests = pushover.wait_for_requests(2)
    assert [r.form["message"] for r in requests] == ["run 1", "run 2"]


def test_a_failing_isolated_run_is_recorded_with_its_traceback(tmp_path: Path, clock: FakeClock) -> None:
    write_module(tmp_path, "fails", """
        ISOLATE = True
        INTERVAL = 60
        def run(log):
            raise ValueError("sensor unplugged")
    """)
    main = isolated_main(clock, tmp_path)
    with log_seen("run failed") as failed:
        main.tick(clock.now())
        assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert failed.wait(0) and "ValueError: sensor unplugged" in (failed.records[0].exc_text or "")
    [run] = main.states.history("fails", 10)
    assert run.error == "ValueError: sensor unplugged"
    main.shutdown()


def test_retries_run_a_failed_module_again_and_alert_only_when_the_last_try_fails(
        clock: FakeClock) -> None:
    tries: list[object] = []

    def flaky(log, notify):
        tries.append(clock.now())
        if len(tries) <= 2:
            raise RuntimeError(f"try {len(tries)} failed")

    main = make_main(clock, spec("flaky", flaky, interval_s=3600, retries=3,
                                 retry_delay=timedelta(minutes=1)))
    main.tick(clock.now())
    for gap_s in (60, 120):  # the first retry after RETRY_DELAY, the second after twice that
        assert main.runner.wait_idle(timeout_s=WAIT_S)
        assert clock.wait_for_waiters(1, WAIT_S)
        clock.advance(gap_s - 1)
        assert clock.wait_for_waiters(1, WAIT_S) and len(tries) == 3 - (180 - gap_s) // 60
        clock.advance(1)
        before = len(tries)
        assert main.runner.wait_for(lambda now: len(tries) > before, WAIT_S)  # noqa: B023
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert [(t - T0).total_seconds() for t in tries] == [0, 60, 180]  # type: ignore[operator]
    history = main.states.history("flaky", 10)
    assert [run.how for run in history] == ["ok", "error", "error"]  # newest first, each try a row
    assert main.outbox.listing(10) == []  # the last try worked: no failure alert
    main.shutdown()


def test_jitter_spreads_the_start_of_modules_that_share_an_interval(clock: FakeClock) -> None:
    starts: dict[str, object] = {}
    lock = threading.Lock()

    def recorder(name: str) -> Callable[..., None]:
        def run(log, notify):
            with lock:
                starts[name] = clock.now()
        return run

    modules = [spec(f"m{n:02d}", recorder(f"m{n:02d}"), interval_s=300, jitter=timedelta(seconds=30))
               for n in range(20)]
    main = make_main(clock, *modules)
    assert len(main.tick(clock.now())) == 20 and starts == {}  # none at the tick itself
    for _ in range(30):
        assert clock.wait_for_waiters(1, WAIT_S)
        clock.advance(1)
        assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert main.runner.wait_for(lambda now: len(starts) == 20, WAIT_S)
    seconds = {(moment - T0).total_seconds() for moment in starts.values()}  # type: ignore[operator]
    assert all(0 < s <= 30 for s in seconds) and len(seconds) >= 8
    main.shutdown()
