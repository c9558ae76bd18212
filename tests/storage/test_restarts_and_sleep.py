"""Restarts, laptop sleep, calendar schedules, hot reload and crashes, through the real program."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import clean_env, run_autohome

BERLIN = ZoneInfo("Europe/Berlin")


def says(folder: Path, name: str, message: str, schedule: str = "INTERVAL = 30") -> Path:
    """A module that logs one message per run."""
    return write_module(folder, name, f'{schedule}\ndef run(log, notify):\n    log.info("{message}")\n')


def log_text(workdir: Path) -> str:
    return (workdir / "logs" / "test.log").read_text(encoding="utf-8")


def stored_runs(workdir: Path, module: str) -> list[tuple[datetime, str | None]]:
    """(start in Berlin time, error) of each stored run, oldest first, read from the real file."""
    with sqlite3.connect(workdir / "data" / "autohome-test.db") as conn:
        rows = conn.execute("SELECT started, error FROM runs WHERE module = ? ORDER BY id",
                            (module,)).fetchall()
    return [(datetime.fromisoformat(s).astimezone(BERLIN), e) for s, e in rows]


def test_restart_keeps_last_runs_and_pauses(tmp_path: Path, daemon_factory) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "daily", 'INTERVAL = "1d"\ndef run(log, notify):\n    log.info("daily ran")\n')
    write_module(modules, "often", 'INTERVAL = 30\ndef run(log, notify):\n    log.info("often ran")\n')
    first = daemon_factory(tmp_path, "-t", "--port", "0", "--start", "2026-06-01T09:00")
    client = ConsoleClient(first.console_port)
    first.wait_for("module often finished")
    assert client.command("modules pause often").strip() == "often paused"
    client.close()
    first.close_stdin()
    assert first.wait() == 0
    assert log_text(tmp_path).count("daily ran") == 1

    # An hour later: the daily module is not due, the paused one stays paused.
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2026-06-01T10:00", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    assert log_text(tmp_path).count("daily ran") == 1
    assert log_text(tmp_path).count("often ran") == 1
    # A day later it runs again.
    run_autohome(tmp_path, "-t", "--no-console", "--start", "2026-06-02T09:00")
    assert log_text(tmp_path).count("daily ran") == 2


def test_an_8_hour_sleep_runs_each_overdue_module_once(tmp_path: Path) -> None:
    for name, interval in (("minutely", "1m"), ("hourly", "1h"), ("weekly", "7d")):
        write_module(tmp_path / "modules", name,
                     f'INTERVAL = "{interval}"\ndef run(log, notify):\n    log.info("{name} ran")\n')
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2026-06-01T09:00",
                          stdin="sleep 8h\n", env=clean_env(AUTOHOME_TIMEZONE="Europe/Berlin"))
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("minutely ran") == 2 and log.count("hourly ran") == 2
    assert log.count("weekly ran") == 1
    assert "woke after a gap of 8h (asleep or suspended); overdue, running once each: hourly, minutely" in log
    assert [m.strftime("%H:%M") for m, _ in stored_runs(tmp_path, "hourly")] == ["09:00", "17:00"]


@pytest.mark.parametrize(("start", "expected"), [
    ("2026-03-28T12:00", ["2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"]),
    ("2026-10-24T12:00", ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]),
])
def test_at_and_cron_fire_at_local_times_across_dst(tmp_path: Path, start: str, expected: list[str]) -> None:
    write_module(tmp_path / "modules", "at_job", 'AT = "02:30"\ndef run(log, notify):\n    pass\n')
    write_module(tmp_path / "modules", "cron_job", 'CRON = "30 2 * * *"\ndef run(log, notify):\n    pass\n')
    env = clean_env(AUTOHOME_TIMEZONE="Europe/Berlin", AUTOHOME_TICK_SECONDS="5m")
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", start, stdin="2d\n", env=env)
    assert result.returncode == 0, result.stderr
    for module in ("at_job", "cron_job"):
        assert [m.strftime("%Y-%m-%d %H:%M %Z") for m, _ in stored_runs(tmp_path, module)] == expected


def _rewrite(path: Path, source: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(source)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a clearly newer mtime, whatever the fs


def test_an_edit_is_picked_up_on_the_next_tick_and_a_broken_edit_keeps_the_last_good(
    tmp_path: Path, daemon_factory
) -> None:
    path = write_module(tmp_path / "modules", "greeter",
                        'INTERVAL = 30\ndef run(log, notify):\n    log.info("hello v1")\n')
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("hello v1")
    _rewrite(path, 'INTERVAL = 30\ndef run(log, notify):\n    log.info("hello v2")\n')
    daemon.send("\n")
    daemon.wait_for("module greeter reloaded")
    daemon.wait_for("hello v2")

    _rewrite(path, 'INTERVAL = 30\ndef run(log, notify)\n    log.info("hello v3")\n')
    daemon.send("\n")
    daemon.wait_for("the edit broke it, the last good version keeps running")
    daemon.wait_for("module greeter finished")
    assert "hello v2" in log_text(tmp_path).split("the edit broke it")[1]
    assert "edit not loaded" in client.command("modules")
    assert "SyntaxError" in client.command("modules read greeter")

    # Fixed, and picked up at once with `modules reload`.
    _rewrite(path, 'INTERVAL = 30\ndef run(log, notify):\n    log.info("hello v4")\n')
    assert client.command("modules reload").strip() == "reloaded: greeter"
    assert "edit not loaded" not in client.command("modules")
    daemon.send("\n")
    daemon.wait_for("hello v4")

    says(tmp_path / "modules", "newcomer", "new!")
    path.unlink()
    assert client.command("modules reload").strip() == "added: newcomer; removed: greeter"
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_the_store_keeps_values_across_restarts(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "ip_watch", '''
        INTERVAL = 30
        def run(log, notify, store):
            seen = store.get("count", 0) + 1
            store.set("count", seen)
            store.set("history", {"last": seen})
            log.info("seen %d times", seen)
    ''')
    says(tmp_path / "modules", "plain", "plain ran")
    run_autohome(tmp_path, "-t", "--no-console", "--start", "2026-06-01T09:00", stdin="\n")
    run_autohome(tmp_path, "-t", "--no-console", "--start", "2026-06-01T10:00", stdin="\n")
    log = log_text(tmp_path)
    assert "seen 4 times" in log and "seen 5 times" not in log
    assert log.count("plain ran") == 4


def test_a_bad_store_value_fails_that_run_only(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "sloppy", '''
        INTERVAL = 30
        def run(log, notify, store):
            store.set("when", object())
    ''')
    result = run_autohome(tmp_path, "-t", "--no-console")
    assert result.returncode == 0
    assert "store.set('when', ...) needs a JSON value" in log_text(tmp_path)


def test_kill_9_during_runs_leaves_a_database_that_opens(tmp_path: Path, daemon_factory,
                                                         process_factory) -> None:
    write_module(tmp_path / "modules", "stuck", '''
        import threading
        INTERVAL = 30
        def run(log, notify):
            log.info("stuck started")
            threading.Event().wait()
    ''')
    says(tmp_path / "modules", "quick", "quick ran")
    daemon = process_factory(tmp_path, "--port", "0", "--data", "data")
    daemon.wait_for_all("module quick finished", "modules.stuck: stuck started")
    daemon.process.kill()
    daemon.process.wait()
    with sqlite3.connect(tmp_path / "data" / "autohome.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert set(conn.execute("SELECT module, error FROM runs")) == {("quick", None)}

    restarted = daemon_factory(tmp_path, "--port", "0", "--data", "data")
    client = ConsoleClient(restarted.console_port)
    assert "recent runs: none yet" in client.command("modules read stuck")  # lost in flight
    # quick may run again at once, when the restart crosses a 30 s boundary
    assert re.search(r"recent runs \([1-3] shown, 0 failed\)", client.command("modules read quick"))
    client.sock.sendall(b"shutdown\r\n")
    client.read_all()
    assert restarted.wait() == 0


@pytest.mark.parametrize("damage", ["folder", "garbage", "pages"])
def test_an_unusable_database_stops_startup_naming_the_file(tmp_path: Path, damage: str) -> None:
    (tmp_path / "modules").mkdir()
    db = tmp_path / "data" / "autohome-test.db"
    db.parent.mkdir()
    if damage == "folder":
        db.mkdir()
    elif damage == "garbage":
        db.write_bytes(b"this is not a database at all" * 100)
    else:  # the header intact, the pages garbage
        says(tmp_path / "modules", "quick", "quick ran")
        assert run_autohome(tmp_path, "-t", "--no-console").returncode == 0
        data = db.read_bytes()
        db.write_bytes(data[:100] + bytes(range(256)) * ((len(data) - 100) // 256 + 1))
    result = run_autohome(tmp_path, "-t", "--no-console")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert str(db.relative_to(tmp_path)) in line and "AUTOHOME_DATA_DIR" in line
    if damage == "pages":
        assert "move it aside" in line.lower() and "Traceback" not in result.stderr


@pytest.mark.parametrize("isolate", [False, True])
def test_nan_and_infinity_are_refused_by_the_store_like_any_other_non_json(tmp_path: Path,
                                                                          isolate: bool) -> None:
    write_module(tmp_path / "modules", "sloppy", f'''
        ISOLATE = {isolate}
        INTERVAL = 30
        def run(log, notify, store):
            for value in (float("nan"), float("inf")):
                try:
                    store.set("x", value)
                except ValueError as exc:
                    log.info("refused: %s", exc)
            log.info("stored: %r", store.get("x", "nothing"))
    ''')
    assert run_autohome(tmp_path, "-t", "--no-console").returncode == 0
    log = log_text(tmp_path)
    assert log.count("refused: store.set('x', ...) needs a JSON value") == 2
    assert "stored: 'nothing'" in log


def test_modules_read_shows_the_store_s_keys_and_values(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "keeper", '''
        INTERVAL = 30
        def run(log, notify, store):
            store.set("last_ip", "192.0.2.1")
            store.set("count", 1)
    ''')
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("module keeper finished")
    read = client.command("modules read keeper")
    assert 'store:     2 keys\r\n  count = 1\r\n  last_ip = "192.0.2.1"' in read  # keys with values
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_a_laptop_sleep_is_kept_for_the_timeline_across_a_restart(tmp_path: Path) -> None:
    from support.clock import FakeClock

    from autohome.app import build
    from autohome.config import Config
    from autohome.storage.db import TEST_DB_FILE, open_database

    says(tmp_path / "modules", "counter", "counted")
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="UTC")
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2031-05-06T07:00",
                          stdin="sleep 2h\n", env=env)
    assert result.returncode == 0, result.stderr
    db = open_database(tmp_path / "data", TEST_DB_FILE)
    later = datetime(2031, 5, 6, 12, 0, tzinfo=ZoneInfo("UTC"))
    restarted = build(Config(console_enabled=False, web_enabled=False), FakeClock(later), [], db=db)
    [(asleep, awake, kind)] = restarted.panel.sleeps()
    assert (asleep.hour, awake.hour, kind) == (7, 9, "asleep")
    db.close()


def test_a_gap_is_explained_at_the_next_start_an_unclean_stop_once_notified(tmp_path: Path,
                                                                          process_factory) -> None:
    write_module(tmp_path / "modules", "counter",
                 'INTERVAL = 60\ndef run(log, notify):\n    log.info("counted")\n')
    first = process_factory(tmp_path, "--port", "0", "--no-web")
    first.wait_for("counted")
    first.process.kill()  # kill -9: no clean stop
    first.wait()
    second = process_factory(tmp_path, "--port", "0", "--no-web")
    second.wait_for(r"AutoHome stopped without a clean stop \(a crash, kill -9 or a power loss\): it was "
                    r"last alive at .*, \d+(\.\d+)?s ago")
    client = ConsoleClient(second.console_port)
    listing = client.command("notifications")
    assert listing.count("AutoHome stopped without a clean stop") == 1
    assert "gap      AutoHome stopped without a clean stop" in client.command("status")
    client.sock.sendall(b"shutdown\r\n")  # a clean stop
    client.read_all()
    assert second.wait() == 0
    third = process_factory(tmp_path, "--port", "0", "--no-web")
    third.wait_for(r"AutoHome was stopped at .* \(a clean stop\), \d+(\.\d+)?s ago")
    client = ConsoleClient(third.console_port)
    assert client.command("notifications").count("without a clean stop") == 1  # nothing new
    client.sock.sendall(b"shutdown\r\n")
    client.read_all()
    assert third.wait() == 0
    log = (tmp_path / "logs" / "current.log").read_text()
    clean = log[log.index("(a clean stop)") - 200:log.index("(a clean stop)")]
    assert " INFO " in clean and " WARNING " not in clean.splitlines()[-1]
