"""The modules folder's files: odd names and links, names like Python's own, and imports
that take their time never stop the other modules."""

from __future__ import annotations

import os
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import clean_env, run_autohome

COUNTER = """
    INTERVAL = 30

    def run(log, notify):
        log.info("counter ran")
"""


def log_text(folder: Path) -> str:
    return (folder / "logs" / "test.log").read_text(encoding="utf-8")


def check(folder: Path) -> tuple[int, str]:
    result = run_autohome(folder, "check")
    return result.returncode, result.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 needs a Linux filesystem")
def test_a_file_name_that_is_not_text_is_broken_and_the_others_run(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    raw = os.fsencode(tmp_path / "modules") + b"/caf\xe9.py"
    with open(raw, "w", encoding="utf-8") as file:
        file.write("INTERVAL = 30\ndef run(log, notify):\n    pass\n")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("counter ran") == 3 and "UnicodeEncodeError" not in log
    assert "module caf\\xe9 is broken and will not run: its file name is not plain text" in log
    code, out = check(tmp_path)
    assert code == 1 and "caf\\xe9: broken: its file name is not plain text" in out


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need rights on Windows")
def test_a_link_loop_and_a_dangling_link_are_broken_and_the_others_run(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    (tmp_path / "modules" / "loop.py").symlink_to("loop.py")
    (tmp_path / "modules" / "gone.py").symlink_to("nowhere.py")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n")
    assert result.returncode == 0, result.stderr
    log = log_text(tmp_path)
    assert log.count("counter ran") == 2 and "cannot read the modules folder" not in log
    code, out = check(tmp_path)
    assert code == 1
    assert "loop: broken: it cannot be read: Too many levels of symbolic links" in out
    assert "gone: broken: it is a link to a file that does not exist" in out
    assert "counter: ok" in out


def test_a_name_the_console_cannot_say_is_broken_with_the_reason(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "my module", COUNTER)
    code, out = check(tmp_path)
    assert code == 1 and "my module: broken: its file name has characters the console cannot name" in out


def test_modules_named_like_pythons_own_hide_nothing(tmp_path: Path, process_factory) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "_helpers", 'WORD = "helped"\n')
    for name in ("inspect", "secrets", "calendar"):
        write_module(modules, name, f"""
            import logging
            logging.getLogger("imports").warning("{name}.py imported")
            INTERVAL = 30
            def run(log):
                log.info("{name} module ran")
        """)
    write_module(modules, "uses_calendar", """
        import calendar, inspect, _helpers
        ISOLATE = True
        INTERVAL = 30
        def run(log):
            log.info("february has %d days, %s", calendar.monthrange(2026, 2)[1], _helpers.WORD)
    """)
    write_module(modules, "uses_inspect", """
        import inspect, _helpers
        INTERVAL = 30
        def run(log):
            log.info("cleandoc: %s, %s", inspect.cleandoc("  tidy"), _helpers.WORD)
    """)
    daemon = process_factory(tmp_path, "-t", "--port", "0", "--web-port", "0")
    daemon.wait_for_all("february has 28 days, helped", "cleandoc: tidy, helped", "secrets module ran",
                        "inspect module ran", "calendar module ran")
    url = next(line for line in daemon.lines if "status page at " in line).split("status page at ")[1]
    with urllib.request.urlopen(url, timeout=WAIT_S) as page:
        assert page.status == 200 and b"uses_calendar" in page.read()
    client = ConsoleClient(daemon.console_port)
    assert "broken" not in client.command("modules")
    client.sock.sendall(b"shutdown\r\n")
    assert daemon.wait() == 0
    log = log_text(tmp_path)
    assert log.count("secrets.py imported") == 1 and "is broken" not in log


def test_an_import_that_hangs_never_holds_up_the_tick(tmp_path: Path, daemon_factory) -> None:
    modules = tmp_path / "modules"
    write_module(modules, "counter", COUNTER)
    release = tmp_path / "release"
    others = set(threading.enumerate())  # other tests' imports that never end
    daemon = daemon_factory(tmp_path, "-t", "--port", "0", env=clean_env(AUTOHOME_IMPORT_TIMEOUT="60"))
    daemon.wait_for("counter ran")
    for number in range(5):  # added while AutoHome runs, each waiting at its top level
        write_module(modules, f"slow{number}", f"""
            import os, time
            while not os.path.exists({str(release)!r}):
                time.sleep(0.01)
            INTERVAL = 30
            def run(log):
                log.info("slow{number} ran")
        """)
    for _ in range(3):  # each tick goes on (before: the first waited for the imports, 60 s)
        daemon.send("\n")
        daemon.wait_for("counter ran")
    imports = [thread for thread in threading.enumerate() if thread.name == "import" and thread not in others]
    assert 1 <= len(imports) <= 5  # at most one thread per file, never one per tick
    client = ConsoleClient(daemon.console_port)
    assert "slow0" not in client.command("modules")
    release.touch()
    for thread in imports:
        thread.join(WAIT_S)
    daemon.send("\n")
    daemon.wait_for_all("module slow3 added from", *(f"slow{number} ran" for number in range(5)))
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_a_module_added_while_autohome_runs_is_said_in_the_log(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "first", "INTERVAL = 60\ndef run(log, notify):\n    pass\n")
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    daemon.wait_for("module first finished")
    write_module(tmp_path / "modules", "second", "INTERVAL = 60\ndef run(log, notify):\n    pass\n")
    daemon.send("\n")
    daemon.wait_for(r"module second added from .*second\.py")
    daemon.close_stdin()
    assert daemon.wait() == 0
