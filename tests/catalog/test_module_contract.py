"""Discovering modules and reading INTERVAL."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from support.modules import loaded_registry, write_module

from autohome.durations import format_duration, parse_duration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "modules"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), (0.5, 0.5), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     (" 45 ", 45)],
)
def test_intervals_are_numbers_or_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", [0, -5, "soon", "5 parsecs", True, None, [60], "inf"])
def test_bad_intervals_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_durations_print_the_way_people_type_them() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (30, 90, 3600, 5400, 86400)] == [
        "30s", "1m30s", "1h", "1h30m", "1d"]


def test_the_bundled_fixtures_load_with_description(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        found = {entry.name: entry for entry in loaded_registry(FIXTURES).entries()}
    assert found["ok"].spec is not None and found["ok"].spec.summary == "A module that works."
    assert found["boom"].spec is not None
    assert found["broken_syntax"].spec is None
    assert "line 4" in found["broken_syntax"].problem


def test_a_run_with_the_wrong_arguments_is_broken(tmp_path: Path) -> None:
    write_module(tmp_path, "wrong", "INTERVAL = 60\ndef run(logger):\n    pass\n")
    write_module(tmp_path, "named", "INTERVAL = 60\ndef run(config, log):\n    pass\n")
    write_module(tmp_path, "star", "INTERVAL = 60\ndef run(*args):\n    pass\n")
    found = {entry.name: entry for entry in loaded_registry(tmp_path).entries()}
    assert found["wrong"].spec is None
    assert "'logger'" in found["wrong"].problem and "(log, notify)" in found["wrong"].problem
    assert found["star"].spec is not None and found["star"].spec.wants == ("log", "notify")
    assert found["named"].spec is not None and found["named"].spec.wants == ("config", "log")


def test_an_import_error_says_where(tmp_path: Path) -> None:
    write_module(tmp_path, "needs", "import json\n\nimport no_such_library_here\nINTERVAL = 60\n")
    [broken] = loaded_registry(tmp_path).entries()
    assert broken.spec is None
    assert "ModuleNotFoundError" in broken.problem and "no_such_library_here" in broken.problem
    assert "line 3" in broken.problem


@pytest.mark.parametrize(
    ("setting", "said"),
    [("ALERT_AFTER = 0", "ALERT_AFTER = 0 is not allowed: use how many failed runs in a row"),
     ("ALERT_AFTER = '3'", "ALERT_AFTER = '3' is not allowed"),
     ("ALERT_AFTER = True", "ALERT_AFTER = True is not allowed"),
     ("ALERT = 'sometimes'", "ALERT = 'sometimes' is not allowed: use \"never\""),
     ("ALERT_PRIORITY = 3", "ALERT_PRIORITY = 3 is not allowed: use -2, -1, 0"),
     ("ALERT_PRIORITY = 2.0", "ALERT_PRIORITY = 2.0 is not allowed")],
)
def test_bad_alert_settings_make_the_module_broken_and_say_why(tmp_path: Path, setting: str,
                                                               said: str) -> None:
    write_module(tmp_path, "pump", f"INTERVAL = 60\n{setting}\ndef run(log, notify):\n    pass\n")
    [entry] = loaded_registry(tmp_path).entries()
    assert entry.spec is None and said in entry.problem


def test_alert_settings_are_read(tmp_path: Path) -> None:
    write_module(tmp_path, "pump", 'INTERVAL = 60\nALERT_AFTER = 3\nALERT = "never"\nALERT_PRIORITY = 2\n'
                 "def run(log, notify):\n    pass\n")
    [entry] = loaded_registry(tmp_path).entries()
    assert entry.spec is not None and tuple(entry.spec.alert) == (3, True, 2)
