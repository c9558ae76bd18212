"""An isolated run's channel is private, whatever the child sends it stays supervised, and
stopping it stops everything it started."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.modules import write_module
from support.processes import clean_env, run_autohome, run_process

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: pidfds, subreaper")


def log_text(folder: Path) -> str:
    return (folder / "logs" / "test.log").read_text(encoding="utf-8")


def runs(folder: Path, module: str) -> list[tuple[str, str | None, float]]:
    with sqlite3.connect(folder / "data" / "autohome-test.db") as db:
        return db.execute("SELECT outcome, error, duration_s FROM runs WHERE module = ? ORDER BY id",
                          (module,)).fetchall()


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


def test_the_child_gets_no_secret_on_its_command_line_and_no_secret_settings(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "nosy", """
        import json, os, sys
        ISOLATE = True
        INTERVAL = "1d"
        def run(log, config):
            log.info("argv %s", json.dumps(sys.argv[1:]))
            log.info("config %s", json.dumps(sorted(config)))
            log.info("environment %s", json.dumps(sorted(key for key in os.environ if "PUSHOVER" in key
                                                          or "AUTOHOME" in key)))
    """)
    env = clean_env(PUSHOVER_TOKEN="t" * 30, PUSHOVER_USER="u" * 30, AUTOHOME_CONSOLE_PASSWORD="hunter2",
                    MY_SETTING="mine")
    result = run_process(tmp_path, "-t", "--no-console", env=env)
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    argv = json.loads(log.split("argv ", 1)[1].splitlines()[0])
    assert argv[0] == "--fd" and argv[1].isdigit() and argv[2].endswith("nosy.py") and len(argv) == 3
    keys = json.loads(log.split("config ", 1)[1].splitlines()[0])
    assert "MY_SETTING" in keys
    assert not {"PUSHOVER_TOKEN", "PUSHOVER_USER", "AUTOHOME_CONSOLE_PASSWORD"} & set(keys)
    environment = json.loads(log.split("environment ", 1)[1].splitlines()[0])
    assert environment == ["AUTOHOME_WEB_PORT"]


def test_malformed_calls_are_errors_raised_in_the_child_and_the_run_stays_supervised(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "sloppy", """
        import threading
        ISOLATE = True
        INTERVAL = "1d"
        def run(log, notify, store):
            try:
                notify("hi", colour="red")
            except TypeError as exc:
                log.info("notify refused: %s", exc)
            channel = store._channel
            for call in (lambda: channel.call("store_get"), lambda: channel.call("store_set", key="k"),
                         lambda: channel.call("launch_missiles"),
                         lambda: channel.call("notify", message=None)):
                try:
                    log.info("answered: %r", call())
                except Exception as exc:
                    log.info("refused: %s: %s", type(exc).__name__, exc)
            channel.send({"op": "log", "level": "loud", "msg": "an odd level"})
            channel.send({"op": "teleport"})
            channel.send(["not", "a", "message"])
            channel._writer.write(b"not json at all\\n")
            channel._writer.write(b"x" * (2 * 1024 * 1024) + b"\\n")
            channel._writer.flush()
            log.info("still here")
    """)
    write_module(tmp_path / "modules", "hangs_after", """
        import threading
        ISOLATE = True
        INTERVAL = "1d"
        TIMEOUT = 1
        def run(log, notify, store):
            try:
                store._channel.call("store_get")
            except TypeError:
                pass
            threading.Event().wait()
    """)
    env = clean_env(AUTOHOME_STOP_GRACE_SECONDS="1")
    result = run_autohome(tmp_path, "-t", "--no-console", env=env)
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert "notify refused: " in log and "unexpected keyword argument 'colour'" in log
    assert "refused: TypeError: the store needs a key" in log
    assert "refused: TypeError: store.set() needs a key and a value" in log
    assert "refused: RuntimeError: AutoHome offers no 'launch_missiles' to isolated runs" in log
    assert "answered: False" in log  # a blank message is invalid, as in a thread: False, logged
    assert "(level 'loud' is not a logging level) an odd level" in log
    assert "sent 'teleport', which AutoHome does not know" in log
    assert "which is not a message; ignored" in log and "not json at all" in log
    assert "a message of more than 1048576 bytes; it was dropped" in log
    assert "still here" in log and "internal error" not in log
    assert runs(tmp_path, "sloppy")[0][:2] == ("ok", None)
    assert runs(tmp_path, "hangs_after")[0][:2] == ("timeout", "timeout after 1s")


@linux_only
def test_stopping_a_run_stops_processes_that_left_its_group(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "escaper", """
        import subprocess, sys, threading
        ISOLATE = True
        INTERVAL = "1d"
        TIMEOUT = 1
        def run(log):
            session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                       start_new_session=True)
            daemon = subprocess.run(["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"],
                                    capture_output=True, text=True).stdout.strip()
            log.info("escaped %d %s", session.pid, daemon)
            threading.Event().wait()
    """)
    result = run_autohome(tmp_path, "-t", "--no-console", env=clean_env(AUTOHOME_STOP_GRACE_SECONDS="1"))
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    pids = [int(pid) for pid in log.split("escaped ", 1)[1].splitlines()[0].split()]
    assert len(pids) == 2
    for pid in pids:
        assert wait_until_gone(pid), f"process {pid} outlived its run's TIMEOUT"
    assert runs(tmp_path, "escaper")[0][:2] == ("timeout", "timeout after 1s")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions")
def test_a_run_ends_when_the_module_returns_whatever_its_leftovers_keep_open(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "leaver", """
        import subprocess, sys
        ISOLATE = True
        INTERVAL = "1d"
        def run(log):
            # stdout and stderr inherited: it holds the run's pipes open for ten minutes
            left = subprocess.Popen([sys.executable, "-c", "import time; print('left', flush=True); "
                                     "time.sleep(600)"], start_new_session=True)
            log.info("left %d behind", left.pid)
    """)
    result = run_autohome(tmp_path, "-t", "--no-console", env=clean_env(AUTOHOME_STOP_GRACE_SECONDS="5"))
    try:
        assert result.returncode == 0, result.stderr
        [(outcome, error, duration_s)] = runs(tmp_path, "leaver")
        assert (outcome, error) == ("ok", None)
        assert duration_s < 2.5  # not the 5 s stop grace (before: twice that)
    finally:
        pid = int(log_text(tmp_path).split("left ", 1)[1].split()[0])
        os.kill(pid, signal.SIGKILL)


@linux_only
def test_output_without_line_ends_costs_time_and_memory_in_proportion_to_what_is_kept(
        tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "printer", """
        INTERVAL = "1d"
        def run(log):
            print("p" * 40_000_000)  # one 40 MB line
    """)
    write_module(tmp_path / "modules", "flooder", """
        import sys
        ISOLATE = True
        INTERVAL = "1d"
        def run(log):
            chunk = b"f" * 1_000_000
            for _ in range(200):  # 200 MB to stdout, no line end
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            log.info("x" * 50_000_000)  # one 50 MB log message
            log.info("flooded")
    """)
    daemon = process_factory(tmp_path, "--port", "0", "--no-web")
    daemon.wait_for_all("module printer finished", "module flooder finished")
    status = Path(f"/proc/{daemon.process.pid}/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    os.kill(daemon.process.pid, signal.SIGTERM)
    assert daemon.wait() == 0
    log = (tmp_path / "logs" / "current.log").read_text(encoding="utf-8")
    assert "out: ppp" in log and "[... 39,991,808 more characters of this line not kept]" in log
    assert "[... 199,991,808 more characters of this line not kept]" in log
    assert "more characters not sent]" in log and "flooded" in log
    assert peak_kb < 150_000, f"AutoHome peaked at {peak_kb} kB"  # 40 MB of the printer's own string
    assert len(log) < 1_000_000


@pytest.mark.skipif(sys.platform == "win32", reason="an rlimit: Linux and macOS")
def test_an_isolated_module_past_its_memory_ends_as_out_of_memory(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "hungry", """
        ISOLATE = True
        INTERVAL = "1d"
        MEMORY = "200M"
        def run(log):
            hoard = bytearray(400 * 1024 * 1024)
            log.info("got %d bytes", len(hoard))
    """)
    write_module(tmp_path / "modules", "threaded", """
        INTERVAL = "1d"
        MEMORY = "200M"
        def run(log):
            pass
    """)
    result = run_autohome(tmp_path, "-t", "--no-console")
    assert result.returncode == 0, result.stderr
    assert runs(tmp_path, "hungry")[0][:2] == ("error", "out of memory (MEMORY = 200M)")
    log = log_text(tmp_path)
    assert "got " not in log
    assert "module threaded: MEMORY cannot be held in a thread (set ISOLATE = True" in log
    assert run_autohome(tmp_path, "check").returncode == 0


def test_a_memory_that_is_not_a_size_makes_the_module_broken(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "vague", 'ISOLATE = True\nINTERVAL = 60\nMEMORY = "lots"\n'
                 "def run(log):\n    pass\n")
    checked = run_autohome(tmp_path, "check")
    assert checked.returncode == 1 and "MEMORY 'lots' is not a size" in checked.stdout
