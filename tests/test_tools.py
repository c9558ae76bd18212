"""`autohome new` and `autohome check`: writing modules without a daemon (part of issue #14)."""

from __future__ import annotations

from pathlib import Path

from conftest import clean_env, run_autohome, write_module


def test_new_writes_a_module_that_passes_check_and_never_overwrites(tmp_path: Path) -> None:
    made = run_autohome(tmp_path, "new", "sunrise", "--at", "07:30")
    assert made.returncode == 0 and (tmp_path / "modules" / "sunrise.py").exists()
    again = run_autohome(tmp_path, "new", "sunrise")
    assert again.returncode == 2 and "exists already" in again.stdout
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
