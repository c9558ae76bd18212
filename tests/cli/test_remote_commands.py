"""`autohome status`, `autohome log` and `autohome console` against a running daemon."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import MAIN, Terminal, clean_env, free_port

from autohome import cli
from autohome.cli.client import ConsoleConnection, addresses
from autohome.config import Config

COUNTER = '''
    """Counts."""
    INTERVAL = 60
    def run(log, notify):
        log.info("counter ran")
'''


@pytest.fixture
def daemon(tmp_path: Path, daemon_factory):
    write_module(tmp_path / "modules", "counter", COUNTER)
    started = daemon_factory(tmp_path, "-t", "--port", "0")
    started.wait_for("module counter finished")
    return started


def autohome(workdir: Path, *argv: str, port: int | None = None, stdin: str = "",
             **env: str) -> tuple[int, str, str]:
    """Run `autohome ARGV` in-process against the daemon on `port`: exit code, stdout, stderr."""
    if port is not None:
        env["AUTOHOME_CONSOLE_PORT"] = str(port)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), environ=clean_env(**env), stdin=io.StringIO(stdin), stdout=out,
                    stderr=err, workdir=workdir)
    return code, out.getvalue(), err.getvalue()


def test_status_shows_the_daemon_and_its_modules(tmp_path: Path, daemon) -> None:
    code, out, err = autohome(tmp_path, "status", port=daemon.console_port)
    assert code == 0, err
    assert "uptime" in out and "threads" in out
    assert "counter" in out and "every 1m" in out


def test_without_a_daemon_the_commands_say_so_and_exit_1(tmp_path: Path) -> None:
    port = free_port()
    for command in ("status", "log", "console"):
        code, out, err = autohome(tmp_path, command, port=port)
        assert code == 1
        assert f"no AutoHome console answers on 127.0.0.1:{port}: is AutoHome running?" in err
        assert "AUTOHOME_CONSOLE_PORT" in err


def test_the_port_is_found_as_the_daemon_chose_it() -> None:
    assert addresses(Config()) == [("127.0.0.1", 23), ("127.0.0.1", 2323)]
    assert addresses(Config(console_port=2400, console_port_given=True)) == [("127.0.0.1", 2400)]
    assert addresses(Config(console_host="0.0.0.0", console_port=9, console_port_given=True)) == [
        ("127.0.0.1", 9)]


def test_log_shows_the_last_entries(tmp_path: Path, daemon) -> None:
    code, out, err = autohome(tmp_path, "log", "-n", "2", port=daemon.console_port)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 2
    assert "module counter finished" in out


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert autohome(tmp_path, "log", "-n", "5000")[0] == 2
    assert autohome(tmp_path, "status", "--bogus")[0] == 2
    (tmp_path / ".env").write_text("AUTOHOME_CONSOLE_PORT=twenty-three\n")
    code, _, err = autohome(tmp_path, "status")
    assert code == 2 and "AUTOHOME_CONSOLE_PORT" in err


def test_piped_console_runs_a_command_a_line(tmp_path: Path, daemon) -> None:
    code, out, err = autohome(tmp_path, "console", port=daemon.console_port,
                              stdin="modules read counter\nnotify test\n")
    assert code == 0, err
    assert "counter: Counts." in out and "kept, not sent: test mode sends nothing" in out
    code, out, _ = autohome(tmp_path, "console", port=daemon.console_port, stdin="quit\n")
    assert code == 0 and "bye" in out


def test_the_password_comes_from_env(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "counter", COUNTER)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0",
                            env=clean_env(AUTOHOME_CONSOLE_PASSWORD="correct horse"))
    port = daemon.console_port
    code, out, err = autohome(tmp_path, "status", port=port, AUTOHOME_CONSOLE_PASSWORD="correct horse")
    assert code == 0 and "uptime" in out, err
    code, _, err = autohome(tmp_path, "status", port=port)
    assert code == 1 and "asks for a password: set AUTOHOME_CONSOLE_PASSWORD" in err
    code, _, err = autohome(tmp_path, "status", port=port, AUTOHOME_CONSOLE_PASSWORD="wrong")
    assert code == 1 and "refused AUTOHOME_CONSOLE_PASSWORD" in err


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_log_f_follows_until_ctrl_c(tmp_path: Path, daemon) -> None:
    env = clean_env(AUTOHOME_CONSOLE_PORT=str(daemon.console_port))
    terminal = Terminal(sys.executable, "-m", "autohome", "log", "-n", "0", "-f", cwd=tmp_path, env=env)
    try:
        terminal.expect(b"following the log; Ctrl-C or Enter stops")
        ConsoleClient(daemon.console_port).command("modules run counter")
        terminal.expect(b"counter ran")
        terminal.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert terminal.process.wait(15) == 0
    finally:
        terminal.close()
    assert b"Traceback" not in terminal.output


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_the_console_client_has_history_and_completion(tmp_path: Path, daemon) -> None:
    env = clean_env(AUTOHOME_CONSOLE_PORT=str(daemon.console_port), XDG_STATE_HOME=str(tmp_path / "state"),
                    TERM="dumb", INPUTRC=str(tmp_path / "no-inputrc"))
    terminal = Terminal(sys.executable, "-m", "autohome", "console", cwd=tmp_path, env=env)
    try:
        # Keys go only to a waiting prompt: typed ahead, readline may meet them while the
        # terminal is still in cooked mode, where Ctrl-D is taken by the line discipline.
        terminal.expect(b"autohome> ")
        terminal.press(b"help log\r")
        terminal.expect(b"then follow it until Ctrl-C or Enter")
        terminal.await_prompt(b"autohome> ")
        terminal.press(b"\x1b[A\r")  # up-arrow, Enter: the same command again
        terminal.expect(b"then follow it until Ctrl-C or Enter", count=2)
        terminal.await_prompt(b"autohome> ")
        terminal.press(b"modules read cou\t\r")
        terminal.expect(b"counter: Counts.")
        terminal.await_prompt(b"autohome> ")
        terminal.press(b"\x04")  # Ctrl-D leaves
        assert terminal.process.wait(15) == 0
    finally:
        terminal.close()
    history = (tmp_path / "state" / "autohome" / "history").read_text()
    assert "help log" in history and "modules read counter" in history


def test_help_lists_every_command_a_line_each(tmp_path: Path) -> None:
    code, out, _ = autohome(tmp_path, "--help")
    assert code == 0
    for command in ("check", "new NAME", "run NAME", "status", "log [-n N] [-f]", "console", "service"):
        assert f"  autohome {command}" in out
    assert autohome(tmp_path, "-V")[1].startswith("autohome ")



class _Screen(io.StringIO):
    """What a follower has shown so far, awaited by the test."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            written = super().write(text)
            self.changed.notify_all()
            return written

    def shows(self, pattern: str) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: re.search(pattern, self.getvalue()) is not None, WAIT_S)


def test_log_f_shows_the_newest_line_whole_without_waiting_for_more(tmp_path: Path, daemon) -> None:
    connection = ConsoleConnection(Config(console_port=daemon.console_port, console_port_given=True))
    screen = _Screen()
    follower = threading.Thread(target=connection.exchange, args=("log 0 -f", screen), daemon=True)
    follower.start()
    assert screen.shows("following the log")
    client = ConsoleClient(daemon.console_port)
    answer = client.command("modules run counter")
    assert screen.shows(r"module counter finished in [0-9.]+s\n"), (answer, screen.getvalue())
    connection.interrupt()
    follower.join(WAIT_S)
    connection.close()
    client.close()


@pytest.mark.skipif(sys.platform == "win32", reason="a closed pipe's signal is POSIX's")
def test_output_cut_short_by_its_reader_ends_quietly(tmp_path: Path, daemon) -> None:
    for argv in (["status"], ["check"], ["log", "-n", "50"], ["--help"]):
        process = subprocess.Popen([sys.executable, str(MAIN), *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env=clean_env(AUTOHOME_CONSOLE_PORT=str(daemon.console_port)))
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # `| head -0`: the reader leaves before the first line
        err = process.stderr.read()
        process.stderr.close()
        assert process.wait(WAIT_S) == 0, (argv, err)
        assert "Traceback" not in err and "Broken pipe" not in err, (argv, err)


def test_reload_reads_env_again_for_what_modules_see(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "page_watch", '''
        INTERVAL = 60
        REQUIRES = ["PAGE_WATCH_URL"]
        def run(log, notify, config):
            log.info("watching %s", config["PAGE_WATCH_URL"])
    ''')
    (tmp_path / ".env").write_text("AUTOHOME_TICK_SECONDS=30\n")
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    port = daemon.console_port
    client = ConsoleClient(port)
    assert "off: set PAGE_WATCH_URL in .env" in client.command("modules read page_watch")
    (tmp_path / ".env").write_text("AUTOHOME_TICK_SECONDS=60\nPAGE_WATCH_URL=http://example.org/\n")
    code, out, _ = autohome(tmp_path, "reload", port=port)
    assert code == 0
    assert f"settings read again from {tmp_path / '.env'}: PAGE_WATCH_URL changed" in out
    assert "AUTOHOME_TICK_SECONDS changed: AutoHome's own, used from the next restart" in out
    assert "state:     idle" in client.command("modules read page_watch")  # no longer off
    client.command("modules run page_watch")
    daemon.wait_for("watching http://example.org/")  # its config holds the new value
    (tmp_path / ".env").write_text("AUTOHOME_TICK_SECONDS=often\n")
    answer = client.command("reload")
    assert answer.startswith("settings not read again: AUTOHOME_TICK_SECONDS='often' is not allowed")
    assert "state:     idle" in client.command("modules read page_watch")  # the settings in use stay
    client.close()
