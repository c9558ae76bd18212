"""What a module does to Python's `logging` never silences AutoHome or another module, and a
module's own `logging` calls are its lines, once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support.modules import write_module
from support.processes import run_process

COUNTER = """
    INTERVAL = 30

    def run(log, notify):
        log.info("counter ran")
"""


def log_text(folder: Path) -> str:
    return (folder / "logs" / "test.log").read_text(encoding="utf-8")


def stored_runs(folder: Path, module: str) -> int:
    with sqlite3.connect(folder / "data" / "autohome-test.db") as db:
        return db.execute("SELECT COUNT(*) FROM runs WHERE module = ?", (module,)).fetchone()[0]


def test_basic_config_in_a_module_leaves_every_run_recorded_and_its_lines_once(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "scripty", """
        import logging
        logging.basicConfig(level=logging.INFO)  # the first line of half the scripts there are
        INTERVAL = 30

        def run(log, notify):
            logging.basicConfig(level=logging.INFO)
            logging.info("fetching the page")
            logging.getLogger("scripty.parser").warning("odd markup")
    """)
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert "RecursionError" not in log and len(log) < 100_000
    assert log.count("module counter finished") == 3 and stored_runs(tmp_path, "counter") == 3
    assert stored_runs(tmp_path, "scripty") == 3
    assert log.count("autohome.modules.scripty: fetching the page") == 3
    assert log.count("autohome.modules.scripty: scripty.parser: odd markup") == 3
    assert "AutoHome stopped" in log


@pytest.mark.parametrize(("line", "what"), [
    ("logging.disable(logging.CRITICAL)", "logging.disable()"),
    ('logging.getLogger("autohome").handlers.clear()', None),  # not AutoHome's logger: nothing to undo
    ('log.parent.parent.handlers.clear()', "AutoHome's own logger"),
    ("logging.basicConfig(force=True, level=logging.DEBUG)", "basicConfig"),
    ('logging.config.dictConfig({"version": 1, "root": {"level": "CRITICAL"}})', "root logger's level"),
    ("logging.getLogger().setLevel(logging.CRITICAL)", "root logger's level"),
])
def test_what_a_module_does_to_logging_is_undone_and_named_once(tmp_path: Path, line: str,
                                                                what: str | None) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "meddler", f"""
        import logging, logging.config
        INTERVAL = 30

        def run(log, notify):
            {line}
            logging.info("meddler says hi")
    """)
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("module counter finished") == 3 and log.count("counter ran") == 3
    if what is None:
        assert "changed the logging set-up" not in log
    else:
        assert log.count("module meddler changed the logging set-up") == 1, log
        changed = next(entry for entry in log.splitlines() if "changed the logging set-up" in entry)
        assert what in changed
    assert log.count("meddler says hi") <= 3  # its own lines, once each (if it let them through)
    assert "AutoHome stopped" in log
    assert result.stderr.count("module counter finished") == 3  # the terminal too


def test_a_module_logging_through_its_own_logger_gets_its_lines(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "plain", """
        import logging
        INTERVAL = 30
        logger = logging.getLogger(__name__)

        def run(log, notify):
            logger.info("through getLogger(__name__)")
            logging.debug("not shown: below INFO")
    """)
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("through getLogger(__name__)") == 2
    assert "[module:plain] autohome.modules.plain: autohome_modules.plain: through getLogger" in log
    assert "not shown" not in log and "changed the logging set-up" not in log


def test_a_module_that_replaces_sys_stdout_takes_no_other_modules_output(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "talker", """
        INTERVAL = 30
        def run(log):
            print("talker says hi")
    """)
    write_module(tmp_path / "modules", "thief", """
        import io, sys
        INTERVAL = "1d"
        def run(log):
            sys.stdout = sys.stderr = io.StringIO()
    """)
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("out: talker says hi") >= 2  # at the ticks after the thief's run, for sure
    assert log.count("module thief replaced sys.stdout or sys.stderr") == 1
