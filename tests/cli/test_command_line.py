"""The real program: test mode, exit codes and configuration through cli.main in-process;
signals and a terminal with real processes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import MAIN, Terminal, clean_env, free_port, run_autohome

COUNTER = """
    '''Counts its runs in the log.'''
    INTERVAL = {interval!r}

    def run(log, notify):
        log.info("counter ran")
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_module(tmp_path / "modules", "counter", COUNTER.format(interval=60))
    return tmp_path


def log_text(workdir: Path) -> str:
    return (workdir / "logs" / "test.log").read_text(encoding="utf-8")


def test_five_ticks_over_two_minutes_run_a_60s_module_three_times(workdir: Path) -> None:
    env = clean_env(AUTOHOME_LOG_LEVEL="DEBUG")
    result = run_autohome(workdir, "-t", "--no-console", stdin="\n\n\n\n", env=env)
    assert result.returncode == 0, result.stderr
    log = log_text(workdir)
    assert log.count("counter ran") == 3
    assert log.count("autohome.main: tick at") == 5
    assert "test mode: end of input, shutting down" in log


def test_a_number_advances_that_many_ticks(workdir: Path) -> None:
    result = run_autohome(workdir, "-t", "--no-console", stdin="4\n")
    assert result.returncode == 0, result.stderr
    assert log_text(workdir).count("counter ran") == 3


def test_a_duration_ticks_at_every_boundary_it_crosses(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER.format(interval="30s"))
    # 10s three times crosses the 30 s boundary once: ticks at 0 and 30.
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="10s\n10s\n10s\n")
    assert result.returncode == 0, result.stderr
    assert log_text(tmp_path).count("counter ran") == 2
    # 2m from the start: ticks at 0, 30, 60, 90, 120.
    (tmp_path / "logs" / "test.log").unlink()
    (tmp_path / "data" / "autohome-test.db").unlink()  # forget the first run's schedule
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="2m\n")
    assert log_text(tmp_path).count("counter ran") == 5


def test_unreadable_test_input_is_explained_and_ignored(workdir: Path) -> None:
    result = run_autohome(workdir, "-t", "--no-console", stdin="soon\n\n")
    assert result.returncode == 0
    assert "cannot read 'soon'" in result.stderr
    assert "Enter = next tick" in result.stderr
    assert log_text(workdir).count("counter ran") == 1  # ticks at 0 and 30


def test_any_test_input_gets_one_warning_and_leaves_time_where_it_was(workdir: Path) -> None:
    huge = "9" * 5000
    lines = ["10000000d", "1e300", "sleep 1e300", huge, "0", "-5", "\x00\xff", ""]
    result = run_autohome(workdir, "-t", "--no-console", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "test mode: cannot read" in line]
    assert len(warnings) == 7 and "Traceback" not in result.stderr
    assert "'" + "9" * 200 + "...'" in result.stderr and huge not in result.stderr
    assert log_text(workdir).count("counter ran") == 1  # only the empty line moved time: to 30 s


def test_test_mode_waits_for_every_run_before_moving_time(tmp_path: Path) -> None:
    # Six slow-ish modules, two threads: each tick's backlog must drain before the next tick.
    for number in range(6):
        write_module(tmp_path / "modules", f"m{number}", """
            import threading
            INTERVAL = 30
            def run(log, notify):
                threading.Event().wait(0.05)
                log.info("done")
        """)
    env = clean_env(AUTOHOME_MAX_THREADS="2", AUTOHOME_LOG_LEVEL="DEBUG")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="\n\n", env=env)
    assert result.returncode == 0, result.stderr
    lines = log_text(tmp_path).splitlines()
    ticks = [i for i, line in enumerate(lines) if "tick at" in line]
    assert len(ticks) == 3
    for start, end in zip(ticks, ticks[1:], strict=False):
        assert sum("done" in line for line in lines[start:end]) == 6
    assert "dropped from the backlog" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_at_a_terminal_the_prompt_comes_after_the_ticks_lines(workdir: Path) -> None:
    # Log lines reach the terminal through the log writer, and a run's "finished" line only
    # once the state writer stored the run; the prompt must wait for both, also when a tick
    # runs several modules (the state writer then waits for the others' runs).
    for name in ("counter", "counter2", "counter3"):
        write_module(workdir / "modules", name, COUNTER.format(interval=30))
    terminal = Terminal(sys.executable, str(MAIN), "-t", "--no-console", cwd=workdir, env=clean_env())
    try:
        for tick in (1, 2):
            screen = terminal.expect(b"] > ", count=tick).decode(errors="replace")
            before_prompt = screen.split("] > ")[tick - 1]
            for name in ("counter", "counter2", "counter3"):
                assert f"module {name} finished" in before_prompt, screen
            terminal.type("")
        terminal.expect(b"] > ", count=3)
    finally:
        terminal.close()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_the_test_mode_prompt_shows_time_in_the_configured_zone(workdir: Path) -> None:
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="Asia/Tokyo")
    terminal = Terminal(sys.executable, str(MAIN), "-t", "--no-console", "--start", "2031-05-06T07:00",
                        cwd=workdir, env=env)
    try:
        terminal.expect(b"[2031-05-06 07:00:00] > ")  # Tokyo's 07:00, though the machine is on UTC
    finally:
        terminal.close()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_at_a_terminal_the_prompt_has_line_editing_and_history(workdir: Path) -> None:
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="UTC", TERM="dumb", INPUTRC=str(workdir / "no-inputrc"))
    terminal = Terminal(sys.executable, str(MAIN), "-t", "--no-console", "--start", "2031-05-06T07:00",
                        cwd=workdir, env=env)
    try:
        terminal.expect(b"[2031-05-06 07:00:00] > ")
        terminal.press(b"2x\x7fm\r")  # a typo, Backspace, then 2m
        terminal.expect(b"[2031-05-06 07:02:00] > ")
        terminal.press(b"\x1b[A\r")  # up-arrow: 2m again
        terminal.expect(b"[2031-05-06 07:04:00] > ")
        terminal.press(b"soon\r")  # refused with one line; time stays
        terminal.expect(b"[2031-05-06 07:04:00] > ", count=2)
        assert terminal.output.count(b"cannot read 'soon'") == 1
        terminal.press(b"\x04")  # Ctrl-D: shut down
        assert terminal.process.wait(WAIT_S) == 0
    finally:
        terminal.close()
    log = log_text(workdir)
    assert log.count("counter ran") == 5  # each minute from 07:00 to 07:04 (INTERVAL 60)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("AUTOHOME_MAX_THREADS", "abc", "whole number"),
        ("AUTOHOME_MAX_THREADS", "0", "whole number"),
        ("AUTOHOME_TICK_SECONDS", "-5", "duration"),
        ("AUTOHOME_CONSOLE_PORT", "70000", "0 to 65535"),
        ("PUSHOVER_API_URL", "ftp://x", "http"),
    ],
)
def test_a_bad_setting_stops_startup_with_exit_2_naming_it(
    workdir: Path, key: str, value: str, allowed: str
) -> None:
    result = run_autohome(workdir, "--no-console", env=clean_env(**{key: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and repr(value) in lines[0] and allowed in lines[0]


def test_a_bad_setting_in_the_env_file_names_the_file(workdir: Path) -> None:
    (workdir / ".env").write_text("AUTOHOME_TICK_SECONDS=often\n")
    result = run_autohome(workdir, "--no-console")
    assert result.returncode == 2
    assert "AUTOHOME_TICK_SECONDS='often'" in result.stderr and ".env" in result.stderr


def test_bad_arguments_exit_2_with_one_line(workdir: Path) -> None:
    result = run_autohome(workdir, "--bogus")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "autohome: error: unrecognized arguments: --bogus (see --help)"
    ]


def test_missing_env_file_and_missing_module_folder_exit_2(tmp_path: Path) -> None:
    result = run_autohome(tmp_path, "--env-file", "nope.env")
    assert result.returncode == 2 and "nope.env does not exist" in result.stderr
    result = run_autohome(tmp_path, "--modules", "nowhere")
    assert result.returncode == 2 and "AUTOHOME_MODULES_DIR=" in result.stderr
    assert f"{tmp_path / 'nowhere'}': no such folder" in result.stderr


def test_help_and_version(workdir: Path) -> None:
    result = run_autohome(workdir, "--help")
    assert result.returncode == 0
    for flag in ("--new", "--test", "--modules", "--logs", "--env-file", "--port", "--no-console"):
        assert flag in result.stdout
    result = run_autohome(workdir, "--version")
    assert result.returncode == 0 and result.stdout.startswith("autohome ")


def test_settings_come_from_env_file_then_environment_then_flags(workdir: Path) -> None:
    (workdir / "elsewhere").mkdir()
    write_module(workdir / "elsewhere", "other", COUNTER.format(interval=60).replace("counter", "other"))
    (workdir / "custom.env").write_text("AUTOHOME_TICK_SECONDS=60\nAUTOHOME_MODULES_DIR=elsewhere\n")
    # The env file moves the modules folder and makes a tick one minute: 3 ticks = 3 runs.
    result = run_autohome(workdir, "-t", "--no-console", "--env-file", "custom.env", stdin="\n\n")
    assert result.returncode == 0, result.stderr
    assert log_text(workdir).count("other ran") == 3
    # The environment wins over the file, and --modules wins over both.
    env = clean_env(AUTOHOME_TICK_SECONDS="30")
    result = run_autohome(workdir, "-t", "--no-console", "--env-file", "custom.env",
                          "--modules", "modules", stdin="\n\n", env=env)
    assert log_text(workdir).count("counter ran") == 2  # ticks at 0, 30, 60


def test_broken_modules_are_reported_and_the_rest_still_run(workdir: Path) -> None:
    modules = workdir / "modules"
    write_module(modules, "syntax", "INTERVAL = 60\ndef run(log, notify)\n    pass\n")
    write_module(modules, "no_run", "INTERVAL = 60\n")
    write_module(modules, "no_interval", "def run(log, notify):\n    pass\n")
    write_module(modules, "bad_interval", "INTERVAL = 'sometimes'\ndef run(log, notify):\n    pass\n")
    write_module(modules, "raises", "raise RuntimeError('needs a token')\n")
    write_module(modules, "_helper", "raise RuntimeError('never imported')\n")
    result = run_autohome(workdir, "-t", "--no-console", stdin="")
    assert result.returncode == 0
    log = log_text(workdir)
    assert "counter ran" in log
    for name, reason in [
        ("syntax", "SyntaxError"),
        ("no_run", "run is missing"),
        ("no_interval", "INTERVAL is missing"),
        ("bad_interval", "'sometimes' is not a duration"),
        ("raises", "RuntimeError: needs a token"),
    ]:
        assert f"module {name} is broken" in log
        line = next(line for line in log.splitlines() if f"module {name} is broken" in line)
        assert reason in line and f"{name}.py" in line
    assert "_helper" not in log
    assert "loaded 1 module(s)" in log and "5 broken" in log


def test_console_shutdown_in_test_mode_exits_0(workdir: Path, daemon_factory) -> None:
    daemon = daemon_factory(workdir, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    assert "counter" in client.command("modules")
    daemon.wait_for("module counter finished")
    assert "module counter finished" in client.command("log 50")  # test.log, as main.py set it up
    assert "counter ran" in client.command("modules read counter")  # the module's recent lines
    client.sock.sendall(b"shutdown\r\n")
    assert b"shutting down" in client.read_all()
    assert daemon.wait() == 0
    assert "AutoHome stopped" in log_text(workdir)


def test_a_busy_port_leaves_modules_running_without_console(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_autohome(workdir, "-t", "--port", str(port), stdin="\n")
    assert result.returncode == 0
    assert f"console cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "AUTOHOME_CONSOLE_PORT" in result.stderr
    assert log_text(workdir).count("counter ran") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", 1)])
def test_a_signal_shuts_down_cleanly_with_exit_0(workdir: Path, process_factory, signum: int) -> None:
    daemon = process_factory(workdir, "--port", "0")
    port = daemon.console_port
    daemon.wait_for("counter ran")
    os.kill(daemon.process.pid, signum)
    assert daemon.wait() == 0
    assert "shutdown requested" in "\n".join(daemon.lines)
    assert "AutoHome stopped" in (workdir / "logs" / "current.log").read_text(encoding="utf-8")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("mode", [(), ("-t",)])
def test_a_signal_is_noticed_at_once_whichever_thread_receives_it(
    tmp_path: Path, process_factory, mode: tuple[str, ...]
) -> None:
    # A signal that arrives around the first tick, or lands on another thread, must still
    # wake the main thread at once, not at the next tick (30 s) or line of input (never).
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        write_module(folder / "modules", "counter", COUNTER.format(interval=60))
        daemon = process_factory(folder, *mode, "--port", "0")
        socket.create_connection(("127.0.0.1", daemon.console_port)).close()
        os.kill(daemon.process.pid, signal.SIGTERM)
        assert daemon.wait(timeout_s=5) == 0, "\n".join(daemon.lines)


def test_test_mode_log_lines_carry_virtual_time(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER.format(interval="1h"))
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="UTC")
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2031-05-06T07:00",
                          stdin="2h\n", env=env)
    assert result.returncode == 0, result.stderr
    runs = [line[:16] for line in log_text(tmp_path).splitlines() if "counter ran" in line]
    assert runs == ["2031-05-06 07:00", "2031-05-06 08:00", "2031-05-06 09:00"]
    ends = [line[:16] for line in log_text(tmp_path).splitlines() if "module counter finished" in line]
    assert ends == runs


def test_a_30s_tick_started_at_17s_ticks_at_30s_and_on_the_minute(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER.format(interval="30s"))
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="UTC")
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2031-05-06T07:00:17",
                          stdin="\n\n\n", env=env)
    assert result.returncode == 0, result.stderr
    starts = [line[:19] for line in log_text(tmp_path).splitlines() if "counter ran" in line]
    # The first tick at once (it stands for 07:00:00), then on the wall clock's boundaries.
    assert starts == ["2031-05-06 07:00:17", "2031-05-06 07:00:30", "2031-05-06 07:01:00",
                      "2031-05-06 07:01:30"]


def test_an_at_schedule_runs_on_the_minute_it_names(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "morning", """
        AT = "08:00"
        def run(log, notify):
            log.info("good morning")
    """)
    env = clean_env(TZ="UTC", AUTOHOME_TIMEZONE="UTC")
    result = run_autohome(tmp_path, "-t", "--no-console", "--start", "2031-05-06T07:59:43",
                          stdin="1m\n", env=env)
    assert result.returncode == 0, result.stderr
    runs = [line[:23] for line in log_text(tmp_path).splitlines() if "good morning" in line]
    assert runs == ["2031-05-06 08:00:00.000"]


def test_a_second_autohome_on_the_same_data_folder_refuses_naming_the_pid(workdir: Path,
                                                                          daemon_factory) -> None:
    first = daemon_factory(workdir, "-t", "--no-console")
    first.wait_for("counter ran")
    second = run_autohome(workdir, "-t", "--no-console")
    assert second.returncode == 2
    [line] = second.stderr.strip().splitlines()
    assert f"another AutoHome (PID {os.getpid()}) is running on {workdir / 'data'}" in line
    first.close_stdin()
    assert first.wait() == 0
    assert run_autohome(workdir, "-t", "--no-console").returncode == 0  # free again


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_lock_left_by_kill_9_never_blocks_a_restart(workdir: Path, process_factory) -> None:
    daemon = process_factory(workdir, "--port", "0")
    daemon.wait_for("counter ran")
    daemon.process.kill()
    daemon.process.wait()
    assert (workdir / "data" / "autohome.db.pid").exists()  # left behind, and harmless
    result = run_autohome(workdir, "-t", "--no-console")
    assert result.returncode == 0, result.stderr


def test_a_log_file_that_is_a_folder_is_one_line_and_exit_2(workdir: Path) -> None:
    (workdir / "logs" / "test.log").mkdir(parents=True)
    result = run_autohome(workdir, "-t", "--no-console")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"log file {workdir / 'logs' / 'test.log'} cannot be written" in line


def test_a_broken_env_file_is_one_line_naming_the_file_and_line(workdir: Path) -> None:
    (workdir / ".env").write_text('AUTOHOME_TICK_SECONDS="5\n')
    result = run_autohome(workdir, "-t", "--no-console")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert ".env, line 1: cannot read" in line


SETPRIV = shutil.which("setpriv")


def _as_a_normal_user(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """main.py without the right to bind ports below 1024, as a normal user has."""
    assert SETPRIV is not None
    return subprocess.run([SETPRIV, "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service",
                           sys.executable, str(MAIN), *args], cwd=workdir, input="\n", capture_output=True,
                          text=True, timeout=30, env=clean_env())


@pytest.mark.skipif(SETPRIV is None or sys.platform != "linux", reason="needs Linux and setpriv")
def test_without_rights_to_port_23_the_console_moves_to_2323_unless_a_port_was_asked_for(
        workdir: Path) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 2323))
        except OSError:
            pytest.skip("port 2323 is taken on this machine")
    result = _as_a_normal_user(workdir, "-t")
    assert result.returncode == 0, result.stderr
    assert "console on 127.0.0.1:2323: port 23 needs administrator rights" in result.stderr
    assert "console listening on 127.0.0.1:2323" in result.stderr
    asked = _as_a_normal_user(workdir, "-t", "--port", "23")  # an explicit port is never replaced
    assert "console cannot listen on 127.0.0.1:23" in asked.stderr and "2323" not in asked.stderr.split(
        "Set AUTOHOME_CONSOLE_PORT")[0]


def test_every_command_has_its_help_from_the_one_table(tmp_path: Path) -> None:
    from autohome.cli.table import COMMANDS

    listing = run_autohome(tmp_path, "--help").stdout
    for command in COMMANDS:
        assert f"  autohome {command.usage}" in listing and command.summary in listing
        result = run_autohome(tmp_path, command.name, "--help")
        assert result.returncode == 0 and result.stderr == ""
        assert result.stdout.startswith(f"usage: autohome {command.name}")
        assert command.description.split(":")[0] in " ".join(result.stdout.split())


def test_every_command_says_bad_usage_on_stderr_in_one_line_and_exits_2(tmp_path: Path) -> None:
    for argv in (["check", "--bogus"], ["new"], ["new", "Bad-Name"], ["run"], ["status", "--bogus"],
                 ["log", "-n", "many"], ["console", "--bogus"], ["service", "restart"], ["-t", "status"]):
        result = run_autohome(tmp_path, *argv)
        assert result.returncode == 2, argv
        assert result.stdout == "", argv
        command = argv[0] if argv[0] != "-t" else ""
        assert len(result.stderr.splitlines()) == 1, argv
        assert result.stderr.startswith(f"autohome {command}".rstrip() + ": error: "), argv
    assert "-t, --test is an option for running AutoHome" not in run_autohome(tmp_path, "-t", "status").stderr
    assert "--test is an option for running AutoHome, not for 'autohome status'" in run_autohome(
        tmp_path, "-t", "status").stderr


def test_a_bad_setting_is_an_error_on_stderr_for_the_commands_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AUTOHOME_TIMEZONE=Mars/Olympus\n")
    for command in ("check", "status", "log"):
        result = run_autohome(tmp_path, command)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"autohome {command}: error: AUTOHOME_TIMEZONE"), result.stderr


def test_an_env_file_given_before_the_command_is_read_by_every_command(tmp_path: Path) -> None:
    (tmp_path / "custom.env").write_text("AUTOHOME_MODULES_DIR=elsewhere\n")
    for argv in (["--env-file", "custom.env", "check"], ["check", "--env-file", "custom.env"],
                 ["--env-file", "custom.env", "new", "plants"]):
        result = run_autohome(tmp_path, *argv)
        assert result.returncode == 0, (argv, result.stderr)
    assert (tmp_path / "elsewhere" / "plants.py").is_file()
    assert run_autohome(tmp_path, "--env-file", "custom.env", "check").stdout.startswith("plants: ok")


def test_test_mode_says_what_a_bare_number_means(workdir: Path) -> None:
    result = run_autohome(workdir, "-t", "--no-console", stdin="2.5\nsleep 90\nsoon\n\n")
    warnings = [line for line in result.stderr.splitlines() if "test mode: cannot read" in line]
    assert len(warnings) == 3
    assert all("seconds as a number" not in line for line in warnings)
    assert "a bare number moves that many ticks" in warnings[0] and '"2.5s"' in warnings[0]
    assert "a bare number moves that many ticks" in warnings[1]
    assert 'such as "45s"' in warnings[2]
    assert log_text(workdir).count("counter ran") == 1  # only the empty line moved time: to 30 s


def test_test_mode_beside_a_running_autohome_takes_free_ports_and_says_where(
        tmp_path: Path, process_factory) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER.format(interval=60))
    console, page = free_port(), free_port()
    daemon = process_factory(tmp_path, "--port", str(console), "--web-port", str(page))
    daemon.wait_for(f"status page at http://127.0.0.1:{page}/")
    env = clean_env(AUTOHOME_CONSOLE_PORT=str(console), AUTOHOME_WEB_PORT=str(page))
    result = run_autohome(tmp_path, "-t", stdin="\n", env=env)
    assert result.returncode == 0, result.stderr
    assert f"test mode: console port {console} is taken" in result.stderr
    assert f"test mode: the status page's port {page} is taken" in result.stderr
    listening = re.search(r"console listening on 127\.0\.0\.1:(\d+)", result.stderr)
    shown = re.search(r"status page at http://127\.0\.0\.1:(\d+)/", result.stderr)
    assert listening and int(listening.group(1)) != console and shown and int(shown.group(1)) != page
    assert " ERROR " not in result.stderr


def test_a_second_test_session_does_not_say_the_clock_went_back(workdir: Path) -> None:
    assert run_autohome(workdir, "-t", "--no-console", stdin="2h\n").returncode == 0
    again = run_autohome(workdir, "-t", "--no-console", stdin="\n")
    assert again.returncode == 0
    assert "clock was set back" not in again.stderr and " WARNING " not in again.stderr
    assert "the last test session's virtual time ran past" in again.stderr
