"""`autohome new` and `autohome check`: writing modules without a daemon."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from support.console import ConsoleClient
from support.modules import write_module
from support.processes import clean_env, run_autohome


def test_new_writes_a_module_that_passes_check_and_never_overwrites(tmp_path: Path) -> None:
    made = run_autohome(tmp_path, "new", "sunrise", "--at", "07:30")
    assert made.returncode == 0 and (tmp_path / "modules" / "sunrise.py").exists()
    again = run_autohome(tmp_path, "new", "sunrise")
    assert again.returncode == 2 and "exists already" in again.stderr  # errors go to stderr
    assert run_autohome(tmp_path, "new", "Bad-Name").returncode == 2
    checked = run_autohome(tmp_path, "check", env=clean_env(AUTOHOME_TIMEZONE="Asia/Tokyo"))
    assert checked.returncode == 0, checked.stdout
    lines = checked.stdout.splitlines()
    assert lines[0] == "sunrise: ok, daily 07:30"
    assert len(lines) == 6 and all(line.strip().endswith("07:30:00 JST") for line in lines[1:])


def test_check_names_what_is_broken_or_off_and_exits_1(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "fine", 'INTERVAL = "1h"\ndef run(log, notify):\n    pass\n')
    write_module(modules, "needy", 'INTERVAL = 60\nREQUIRES = ["MY_URLS"]\ndef run(log, notify):\n    pass\n')
    write_module(modules, "feb31", 'CRON = "0 0 31 2 *"\ndef run(log, notify):\n    pass\n')
    result = run_autohome(tmp_path, "check")
    assert result.returncode == 1
    assert "feb31: broken: CRON = '0 0 31 2 *' never comes round" in result.stdout
    assert str(modules / "feb31.py") in result.stdout
    assert "needy: off: set MY_URLS in .env to turn it on, every 1m" in result.stdout
    assert "fine: ok, every 1h" in result.stdout
    assert not (tmp_path / "data").exists()  # nothing ran, nothing was stored


def test_run_runs_one_module_now_with_its_lines_on_the_terminal(tmp_path: Path, pushover) -> None:
    write_module(tmp_path / "modules", "counter", '''
        INTERVAL = "1d"
        def run(log, notify, store):
            count = store.get("count", 0) + 1
            store.set("count", count)
            print("printed by the module")
            log.info("run number %d", count)
            notify(f"counted {count}")
    ''')
    env = clean_env(PUSHOVER_TOKEN="a" * 30, PUSHOVER_USER="u" * 30, PUSHOVER_API_URL=pushover.url)
    first = run_autohome(tmp_path, "run", "counter", env=env)
    assert first.returncode == 0, first.stdout
    assert "autohome.modules.counter: run number 1" in first.stdout
    assert "notification (not sent: run with --notify to send it): counted 1" in first.stdout
    second = run_autohome(tmp_path, "run", "counter", "--notify", env=env)
    assert "run number 2" in second.stdout  # the real store
    assert "notification sent to pushover: counted 2" in second.stdout
    assert [r.form["message"] for r in pushover.wait_for_requests(1)] == ["counted 2"]


def test_run_notify_sends_to_the_channels_named_with_the_attachment(tmp_path: Path, pushover) -> None:
    from support.ntfy import FakeNtfy

    ntfy = FakeNtfy()
    write_module(tmp_path / "modules", "cam", '''
        INTERVAL = "1d"
        def run(log, notify):
            notify("snapshot", attachment=b"\\x89PNG\\r\\n\\x1a\\n" + b"pixels", to=["ntfy"])
            notify("to all", ttl=60)
            notify("nowhere", to=["telegram"])
    ''')
    env = clean_env(PUSHOVER_TOKEN="a" * 30, PUSHOVER_USER="u" * 30, PUSHOVER_API_URL=pushover.url,
                    AUTOHOME_NOTIFY_URLS=f"ntfy={ntfy.url}", AUTOHOME_NOTIFY_PACE="0")
    try:
        result = run_autohome(tmp_path, "run", "cam", "--notify", env=env)
        assert result.returncode == 0, result.stdout
        got = ntfy.wait_for_messages(2)
        assert got[0].attachment == b"\x89PNG\r\n\x1a\n" + b"pixels" and got[1].message == "to all"
        assert [r.form["message"] for r in pushover.wait_for_requests(1)] == ["to all"]
        assert "notification sent to ntfy: snapshot" in result.stdout
        assert "notification goes to ntfy without ttl: the channel cannot carry it" in result.stdout
        assert ("notification not sent: to=['telegram']: no channel named telegram; the channels are "
                "pushover, ntfy" in result.stdout)
    finally:
        ntfy.close()


def test_run_exits_1_with_the_traceback_when_the_module_fails(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "boom",
                 'INTERVAL = 60\ndef run(log, notify):\n    raise ValueError("x")\n')
    result = run_autohome(tmp_path, "run", "boom")
    assert result.returncode == 1 and "Traceback" in result.stdout and "ValueError: x" in result.stdout
    assert run_autohome(tmp_path, "run", "nothing").returncode == 2


def test_run_refuses_a_missing_off_or_broken_module_in_one_line(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "battery", 'INTERVAL = 60\nREQUIRES = ["BATTERY_MIN"]\n'
                 'def run(log, notify, config):\n'
                 '    log.info(config["BATTERY_MIN"])\n')
    write_module(modules, "broken", "INTERVAL = 60\ndef run(log)\n")
    missing = run_autohome(tmp_path, "run", "batery")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        f"autohome run: error: no module named 'batery' in {modules} (did you mean battery?); "
        "`autohome check` lists them"]
    off = run_autohome(tmp_path, "run", "battery")
    assert off.returncode == 2 and "Traceback" not in off.stdout + off.stderr
    assert off.stderr == "autohome run: error: battery is off: set BATTERY_MIN in .env to turn it on\n"
    broken = run_autohome(tmp_path, "run", "broken")
    assert broken.returncode == 2 and broken.stderr.startswith("autohome run: error: broken is broken: ")
    assert not (tmp_path / "data").exists()  # nothing ran, nothing was stored


def test_check_says_what_the_daemon_says_of_each_module(tmp_path: Path, daemon_factory) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "often", 'INTERVAL = 5\ndef run(log, notify):\n    pass\n')
    write_module(modules, "fiveminutes", 'INTERVAL = "5m"\ndef run(log, notify):\n    pass\n')
    write_module(modules, "fails", 'INTERVAL = "1h"\ndef run(log, notify):\n    raise ValueError("no")\n')
    env = clean_env(AUTOHOME_TIMEZONE="UTC")
    daemon = daemon_factory(tmp_path, "--port", "0", env=env)
    daemon.wait_for_all("module fiveminutes finished", "module fails failed", "module often finished")
    client = ConsoleClient(daemon.console_port)
    table = {line.split()[0]: line for line in client.command("modules").splitlines()[1:]}
    checked = run_autohome(tmp_path, "check", env=env)
    client.sock.sendall(b"shutdown\r\n")
    assert daemon.wait() == 0
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    blocks = {line.split(":")[0]: lines[i:i + 6] for i, line in enumerate(lines) if not line.startswith(" ")}
    # The same next run as the daemon's (it ran a moment ago), not "now".
    assert blocks["fiveminutes"][1].strip()[:19] == " ".join(table["fiveminutes"].split()[-2:])
    # An interval shorter than the tick runs each tick, and both say so.
    assert blocks["often"][0] == "often: ok, every 5s (each 30s tick)"
    assert "every 5s (each 30s tick)" in table["often"]
    ticks = [datetime.strptime(line.strip()[:19], "%Y-%m-%d %H:%M:%S") for line in blocks["often"][1:]]
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert gaps == [timedelta(seconds=30)] * 4
    # A module whose last run failed is failing, here and in the console.
    assert blocks["fails"][0] == "fails: failing: error: ValueError: no, every 1h"
    assert " failing " in table["fails"]


def test_the_template_shows_store_and_config_and_still_passes_check(tmp_path: Path) -> None:
    assert run_autohome(tmp_path, "new", "plants").returncode == 0
    text = (tmp_path / "modules" / "plants.py").read_text()
    assert "store.get(" in text and "store.set(" in text and "config.get(" in text
    assert "def run(log, notify, store, config)" in text
    assert run_autohome(tmp_path, "check").stdout.startswith("plants: ok, every 5m")
    assert run_autohome(tmp_path, "run", "plants").returncode == 0
