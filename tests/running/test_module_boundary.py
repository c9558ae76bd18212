"""The module boundary holds: a module cannot hang, silence or steer AutoHome."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import clean_env, run_autohome, run_process

COUNTER = """
    INTERVAL = 30

    def run(log, notify):
        log.info("counter ran")
"""


def log_text(folder: Path) -> str:
    return (folder / "logs" / "test.log").read_text(encoding="utf-8")


def broken_line(log: str, name: str) -> str:
    return next(line for line in log.splitlines() if f"module {name} is broken" in line)


def test_an_import_that_never_ends_is_broken_and_the_others_run(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "hangs", """
        import threading
        threading.Event().wait()  # never returns
        INTERVAL = 30
        def run(log, notify):
            pass
    """)
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n",
                          env=clean_env(AUTOHOME_IMPORT_TIMEOUT="0.3"))
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("counter ran") == 2
    assert "import still running after 0.3s" in broken_line(log, "hangs")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_busy_import_at_start_up_leaves_the_console_up_and_sigterm_ends_the_process(
        tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "spins", "while True:\n    pass\n")
    daemon = process_factory(tmp_path, "--port", "0", env=clean_env(AUTOHOME_IMPORT_TIMEOUT="0.3"))
    client = ConsoleClient(daemon.console_port)
    assert "uptime" in client.command("status")
    daemon.wait_for("counter ran")
    assert "import still running" in client.command("modules read spins")
    os.kill(daemon.process.pid, signal.SIGTERM)
    assert daemon.wait() == 0


@pytest.mark.parametrize(("source", "reason"), [
    ('CRON = "0 0 31 2 *"\n', "never comes round"),
    ("INTERVAL = 1e300\n", "longer than 10 years"),
    ('INTERVAL = "99999999999d"\n', "longer than 10 years"),
    ('INTERVAL = 60\nTIMEOUT = "1e20"\n', "TIMEOUT '1e20' is longer than 10 years"),
    ("INTERVAL = 60\n__doc__ = 42\n", "__doc__ = 42 is not text"),
    ("INTERVAL = 60\ndef __getattr__(name):\n    raise RuntimeError('no ' + name)\n",
     "reading AT raised RuntimeError: no AT"),
    ("INTERVAL = 60\nRETRIES = -1\n", "RETRIES = -1 is not allowed"),
    ('INTERVAL = 60\nJITTER = "soon"\n', "JITTER 'soon' is not a duration"),
])
def test_what_can_never_run_is_broken_with_its_reason_and_the_rest_run(
        tmp_path: Path, source: str, reason: str) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "bad", source + "def run(log, notify):\n    pass\n")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert reason in broken_line(log, "bad") and "Traceback" not in log
    assert log.count("counter ran") == 2


def test_a_module_added_while_running_that_never_comes_round_is_broken(tmp_path: Path,
                                                                       daemon_factory) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("counter ran")
    write_module(tmp_path / "modules", "feb31", 'CRON = "0 0 31 2 *"\ndef run(log, notify):\n    pass\n')
    daemon.send("\n")
    daemon.wait_for("module feb31 is broken")
    daemon.wait_for("counter ran")
    table = client.command("modules")
    assert "never comes round" in table and "counter" in table
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_keyboard_interrupt_or_exit_in_run_is_that_runs_error(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "ctrl_c", """
        INTERVAL = 30
        def run(log, notify):
            raise KeyboardInterrupt
    """)
    write_module(tmp_path / "modules", "counter", COUNTER)
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("module ctrl_c failed after") == 2 and log.count("counter ran") == 2
    with sqlite3.connect(tmp_path / "data" / "autohome-test.db") as db:
        errors = [row[0] for row in db.execute("SELECT error FROM runs WHERE module = 'ctrl_c'")]
    assert errors == ["KeyboardInterrupt: ", "KeyboardInterrupt: "]


@pytest.mark.skipif(sys.platform == "win32", reason="the descriptor test is POSIX")
def test_chdir_and_closing_stderr_in_a_module_touch_nothing_of_autohome(tmp_path: Path) -> None:
    # The real process: its stderr and working directory are what the module attacks.
    elsewhere = tmp_path / "elsewhere"
    write_module(elsewhere / "modules", "intruder", COUNTER.replace("counter ran", "intruder ran"))
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "rude", f"""
        import os, sys
        INTERVAL = 30
        def run(log, notify):
            os.chdir({str(elsewhere)!r})
            sys.stderr.close()
            sys.__stderr__.close()
    """)
    result = run_process(tmp_path, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("counter ran") == 3 and "intruder ran" not in log
    assert result.stderr.count("counter ran") == 3  # the terminal still gets every line
    assert not (elsewhere / "logs").exists()


def test_what_a_thread_module_prints_goes_to_its_log_and_modules_read(tmp_path: Path,
                                                                      daemon_factory) -> None:
    write_module(tmp_path / "modules", "talker", """
        import logging, sys
        INTERVAL = 30
        def run(log, notify):
            print("hello from print")
            print("no line end", end="")
            sys.stderr.write("to stderr\\n")
            handler = logging.StreamHandler(sys.stderr)  # what logging.basicConfig() sets up
            logging.getLogger("somewhere").addHandler(handler)
            logging.getLogger("somewhere").warning("through a stream handler")
            logging.getLogger("somewhere").removeHandler(handler)
    """)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("module talker finished")
    log = log_text(tmp_path)
    assert "autohome.modules.talker: out: hello from print" in log
    assert "autohome.modules.talker: out: no line end" in log
    assert "autohome.modules.talker: err: to stderr" in log
    assert "autohome.modules.talker: err: through a stream handler" in log
    answer = client.command("modules read talker")
    assert "output of the last run:" in answer and "hello from print" in answer
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_helpers_beside_the_modules_are_importable_and_reloaded_when_changed(
        tmp_path: Path, daemon_factory) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "_helpers", 'GREETING = "hi"\n')
    write_module(modules, "greeter", """
        import _helpers
        INTERVAL = 30
        def run(log, notify):
            log.info("greeting: %s", _helpers.GREETING)
    """)
    daemon = daemon_factory(tmp_path, "-t", "--no-console")
    daemon.wait_for("greeting: hi")
    write_module(modules, "_helpers", 'GREETING = "hello there"\n')
    daemon.send("\n")
    daemon.wait_for("greeting: hello there")
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_test_mode_moves_on_past_a_thread_run_that_never_returns(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    write_module(tmp_path / "modules", "forever", """
        import threading
        INTERVAL = 30
        TIMEOUT = 0.3
        def run(log, notify):
            threading.Event().wait()
    """)
    env = clean_env(AUTOHOME_SHUTDOWN_GRACE_SECONDS="1")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n\n", env=env)
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("counter ran") == 3 and log.count("module forever is overrunning") == 1
    assert "still running after the 1s grace period, abandoned: forever" in log


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_threads_a_module_leaves_behind_never_keep_the_process_alive(tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "leaver", """
        import concurrent.futures, threading
        INTERVAL = 30
        POOL = concurrent.futures.ThreadPoolExecutor(1)

        def forever():
            threading.Event().wait()  # a request without a timeout, say

        def run(log):
            threading.Thread(target=forever, name="keeper", daemon=False).start()
            POOL.submit(forever)
            log.info("left threads behind")
    """)
    daemon = process_factory(tmp_path, "--port", "0", "--no-web",
                             env=clean_env(AUTOHOME_SHUTDOWN_GRACE_SECONDS="1"))
    daemon.wait_for("left threads behind")
    os.kill(daemon.process.pid, signal.SIGTERM)
    assert daemon.wait() == 0
    log = (tmp_path / "logs" / "current.log").read_text(encoding="utf-8")
    leftovers = next(line for line in log.splitlines() if "still running after shutdown" in line)
    assert "keeper (module leaver)" in leftovers and "ThreadPoolExecutor-0_0 (module leaver)" in leftovers
    assert log.index("AutoHome stopped") < log.index("still running after shutdown")


@pytest.mark.skipif(sys.platform == "win32", reason="descriptors are watched on POSIX")
def test_a_module_that_closes_autohomes_descriptors_makes_it_exit_1_not_live_on_deaf(
        tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "closer", """
        import os
        INTERVAL = 60
        def run(log):
            log.info("closing everything")
            os.closerange(3, 4096)
    """)
    daemon = process_factory(tmp_path, "--port", "0", "--no-web")
    assert daemon.wait() == 1
    daemon.wait_for("AutoHome's own files and sockets were closed .* by module closer")  # the terminal
    log = (tmp_path / "logs" / "current.log").read_text(encoding="utf-8")
    assert "by module closer; it cannot go on deaf, so it exits with code 1" in log
    assert "AutoHome stopped" in log


@pytest.mark.skipif(sys.platform == "win32", reason="a segfault is a POSIX signal")
def test_a_crash_is_explained_at_the_next_start_and_a_second_one_isolates_the_module(
        tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "crashy", """
        import ctypes
        INTERVAL = 1
        def run(log):
            ctypes.string_at(0)  # a buggy C extension
    """)
    write_module(tmp_path / "modules", "counter", COUNTER.replace("INTERVAL = 30", "INTERVAL = 1"))
    env = clean_env(AUTOHOME_TICK_SECONDS="1")
    first = process_factory(tmp_path, "--port", "0", "--no-web", env=env)
    assert first.wait() == -signal.SIGSEGV
    dump = (tmp_path / "data" / "autohome.db.crash").read_text(encoding="utf-8")
    assert "Fatal Python error: Segmentation fault" in dump and "crashy.py" in dump
    second = process_factory(tmp_path, "--port", "0", "--no-web", env=env)
    second.wait_for(r"AutoHome crashed at [\d-]+ [\d:]+ while running module crashy: Segmentation fault")
    assert second.wait() == -signal.SIGSEGV  # a thread again: it takes the process down again
    third = process_factory(tmp_path, "--port", "0", "--no-web", env=env)
    third.wait_for("module crashy crashed AutoHome 2 times in a row: it runs in a child process")
    third.wait_for(r"module crashy failed after .*exit code -11")
    third.wait_for("counter ran")
    client = ConsoleClient(third.console_port)
    assert "runs in:   a child process: it crashed AutoHome 2 times in a row" in client.command(
        "modules read crashy")
    notifications = client.command("notifications")
    assert "AutoHome crashed at" in notifications and "crashy crashed AutoHome 2 times" in notifications
    client.close()
    os.kill(third.process.pid, signal.SIGTERM)
    assert third.wait() == 0
    assert not (tmp_path / "data" / "autohome.db.crash").exists()  # a clean stop leaves nothing to report
