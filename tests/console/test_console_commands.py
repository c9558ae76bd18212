"""The console over a real socket, against the real daemon on a FakeClock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S
from support.console import ConsoleClient, console_port
from support.modules import spec

from autohome.app import Main
from autohome.catalog.loader import BrokenModule
from autohome.console.telnet import DO, DONT, ECHO, IAC, SGA, TIMING_MARK, WILL, WONT
from autohome.logs.setup import LogSetup


def weather(log, notify):
    log.info("sunny, 21 degrees")


def failing(log, notify):
    raise RuntimeError("no network")


@pytest.fixture
def main(console_factory: Callable[..., Main], logs: LogSetup) -> Main:
    return console_factory(
        spec("weather", weather, 300, "Fetch the weather.\n\nLonger words about the weather."),
        spec("failing", failing, 3600),
        BrokenModule("broken", Path("modules/broken.py"), "INTERVAL is missing"),
        logs=logs,
    )


@pytest.fixture
def client(main: Main) -> Iterator[ConsoleClient]:
    assert main.console is not None
    connection = ConsoleClient(main.console.address[1])
    yield connection
    connection.close()


def test_greeting_names_the_version_and_help(client: ConsoleClient) -> None:
    assert b"AutoHome 0.1.0 console. Type 'help' for commands." in client.greeting
    assert client.greeting.endswith(b"\r\nautohome> ")


def test_help_lists_every_command(client: ConsoleClient) -> None:
    answer = client.command("help")
    for usage in ("help", "quit", "shutdown", "modules", "modules read NAME", "modules run NAME",
                  "modules pause NAME", "modules start NAME"):
        assert usage in answer
    assert "\r\n" in answer and "\n" not in answer.replace("\r\n", "")


def test_modules_shows_state_interval_last_and_next_run(main: Main, client: ConsoleClient) -> None:
    main.tick(T0)
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    lines = client.command("modules").splitlines()
    assert lines[0].split() == ["NAME", "STATE", "SCHEDULE", "RUNS", "IN", "LAST", "RUN", "NEXT", "RUN"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["broken"].split()[1] == "broken" and "INTERVAL is missing" in rows["broken"]
    assert "idle" in rows["weather"] and "every 5m" in rows["weather"] and " ok " in rows["weather"] + " "
    assert rows["weather"].split()[4] == "thread"
    assert "error: RuntimeError: no network" in rows["failing"] and "every 1h" in rows["failing"]
    local_next = (T0 + timedelta(minutes=5)).astimezone()
    assert f"{local_next:%Y-%m-%d %H:%M:%S}" in rows["weather"]


def test_modules_read_shows_description_runs_and_log_lines(main: Main, client: ConsoleClient,
                                                           logs: LogSetup) -> None:
    main.tick(T0)
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    logs.flush()
    answer = client.command("modules read weather")
    assert "weather: Fetch the weather." in answer and "Longer words" in answer
    assert "recent runs (1 shown, 0 failed), newest first:" in answer
    assert "sunny, 21 degrees" in answer
    answer = client.command("modules read failing")
    assert "error: RuntimeError: no network" in answer and "Traceback" not in answer.split("recent log")[0]
    assert "problem:   INTERVAL is missing" in client.command("modules read broken")


def test_run_pause_and_start_steer_a_module(main: Main, client: ConsoleClient) -> None:
    assert client.command("modules pause weather").strip() == "weather paused"
    assert main.tick(T0) == ["failing"]
    assert "paused" in client.command("modules").splitlines()[3]
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert client.command("modules run weather").strip() == "weather started"
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert len(main.states.history("weather", 10)) == 1
    assert client.command("modules start weather").strip() == "weather resumed"
    assert "broken" in client.command("modules run broken")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dance", "unknown command 'dance'; try help"),
        ("modules fly weather", "unknown action 'modules fly'; try help"),
        ("modules read nothing", "no module named 'nothing'; see 'modules' for the list"),
        ("modules run", "usage: modules run NAME (see 'modules' for names)"),
    ],
)
def test_mistakes_get_one_line_and_the_connection_stays(client: ConsoleClient, line: str,
                                                        expected: str) -> None:
    assert client.command(line).strip() == expected
    assert "modules" in client.command("help")


def test_echo_and_sga_are_offered_and_every_other_option_refused(client: ConsoleClient) -> None:
    assert client.greeting.startswith(bytes((IAC, WILL, ECHO, IAC, WILL, SGA)))
    # A client that refuses character mode, offers NAWS and asks for binary: line mode stays.
    client.sock.sendall(bytes((IAC, DONT, ECHO, IAC, DONT, SGA, IAC, WILL, 31, IAC, DO, 0)) + b"he"
                        + bytes((IAC, IAC)) + b"lp\r\n")
    answer = client.read_until(ConsoleClient.PROMPT)
    assert answer.startswith(bytes((IAC, DONT, 31, IAC, WONT, 0)))  # the refusals get no answer
    assert b"unknown command" in answer  # "he\xfflp" is not help, and the 0xFF is data
    client.sock.sendall(bytes((IAC, DONT, ECHO, IAC, WONT, 1)) + b"help\n")  # nothing to answer
    answer = client.read_until(ConsoleClient.PROMPT)
    assert answer.startswith(b"help") and IAC not in answer  # and nothing typed is echoed


def test_ctrl_c_from_telnet_drops_the_line_and_answers_the_timing_mark(client: ConsoleClient) -> None:
    client.sock.sendall(b"modu" + bytes((IAC, 244, IAC, DO, TIMING_MARK)))
    answer = client.read_until(ConsoleClient.PROMPT)
    assert bytes((IAC, WONT, TIMING_MARK)) in answer
    assert "help" in client.command("help")


def test_quit_and_ctrl_d_close_the_connection(main: Main) -> None:
    assert main.console is not None
    first = ConsoleClient(main.console.address[1])
    first.sock.sendall(b"quit\r\n")
    assert first.read_all().endswith(b"bye\r\n")
    second = ConsoleClient(main.console.address[1])
    second.sock.sendall(b"\x04")
    assert second.read_all().endswith(b"bye\r\n")


def test_shutdown_stops_the_daemon(main: Main, client: ConsoleClient) -> None:
    client.sock.sendall(b"shutdown\r\n")
    assert b"shutting down AutoHome" in client.read_all()
    assert main.stop.event.wait(WAIT_S)


def test_a_client_that_vanishes_mid_line_costs_nothing(main: Main) -> None:
    assert main.console is not None
    port = main.console.address[1]
    for _ in range(5):
        gone = ConsoleClient(port)
        gone.sock.sendall(b"modules re")
        gone.close()
    survivor = ConsoleClient(port)
    assert "modules" in survivor.command("help")
    survivor.close()


def test_every_command_in_help_is_understood(main: Main, client: ConsoleClient) -> None:
    for line in client.command("help").strip().splitlines():
        usage = line.split("  ")[0]  # the usage column ends at the first double space
        fill = {"NAME": "weather", "[N]": "5", "[MESSAGE]": "hi", "ID": "1", "[COMMAND]": "modules",
                "[-f]": "", "TEXT": "mod", "[force]": ""}  # following is tested on its own
        command = " ".join(filter(None, (fill.get(word, word) for word in usage.split())))
        if command in ("quit", "shutdown"):
            continue  # they close the connection
        answer = client.command(command)
        assert not answer.startswith(("unknown command", "unknown action", "usage:")), command


def test_a_mistake_suggests_the_nearest_command_or_module(client: ConsoleClient) -> None:
    assert client.command("modlues").strip() == "unknown command 'modlues' (did you mean modules?); try help"
    assert "did you mean weather?" in client.command("modules read wether")
    assert "did you mean pause?" in client.command("modules paws weather")


def test_help_for_one_command_shows_its_usages_only(client: ConsoleClient) -> None:
    lines = client.command("help notifications").strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "notifications", "notifications read ID", "notifications resend ID", "notifications drop ID"]
    assert "did you mean modules?" in client.command("help modulse")


def test_help_for_one_command_adds_its_longer_help_from_the_table(client: ConsoleClient) -> None:
    from autohome.control.commands import COMMANDS

    for command in COMMANDS:
        answer = client.command(f"help {' '.join(command.words)}")
        assert command.summary in answer, command.usage
        if command.details and sum(other.usage.startswith(command.usage + " ") for other in COMMANDS) == 0:
            assert command.details.splitlines()[0] in answer, command.usage
    assert "SIGKILL" in client.command("help modules stop")


def test_a_long_error_does_not_widen_the_modules_table(console_factory) -> None:
    def fails(log, notify):
        raise RuntimeError("the sensor said " + "no " * 100)

    main = console_factory(spec("chatty", fails), spec("weather", lambda log, notify: None))
    main.panel.run_now("chatty")
    main.runner.wait_idle(timeout_s=WAIT_S)
    main.states.flush()
    client = ConsoleClient(console_port(main))
    table = client.command("modules").splitlines()
    assert max(len(line) for line in table) <= 120 and "RuntimeError: the sensor" in table[1]
    assert "no no no " * 5 in client.command("modules read chatty")  # longer where it is asked for
    client.close()
