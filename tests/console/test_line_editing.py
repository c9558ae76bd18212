"""Character mode: a client that lets the server echo gets line editing, history and tab
completion; what it sees is checked on a small model of a terminal's line."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.console import ConsoleClient, console_port
from support.modules import spec

from autohome.app import Main
from autohome.console.telnet import DO, ECHO, IAC, SGA
from autohome.control.commands import BY_WORDS
from autohome.control.completion import complete

UP, LEFT, ENTER = b"\x1b[A", b"\x1b[D", b"\r\x00"


def wattmeter(log, notify):
    log.info("100 W")


def water(log, notify):
    log.info("wet")


class Screen:
    """What a terminal shows of the bytes it received: \\r, \\n, \\b move the cursor."""

    def __init__(self) -> None:
        self.lines = [""]
        self.column = 0

    def show(self, data: bytes) -> None:
        for char in data.decode("utf-8", errors="replace"):
            if char == "\r":
                self.column = 0
            elif char == "\n":
                self.lines.append("")
                self.column = 0
            elif char == "\b":
                self.column = max(0, self.column - 1)
            elif char >= " ":
                line = self.lines[-1].ljust(self.column)
                self.lines[-1] = line[: self.column] + char + line[self.column + 1:]
                self.column += 1

    @property
    def line(self) -> str:
        return self.lines[-1].rstrip()


class Keys:
    """A client in character mode: it sends keys and reads what the server shows."""

    def __init__(self, port: int, prompt: bytes = ConsoleClient.PROMPT) -> None:
        self.client = ConsoleClient(port, greeting_ends=None)
        self.screen = Screen()
        greeting = self.client.read_until(prompt)
        assert greeting.startswith(bytes((IAC, 251, ECHO, IAC, 251, SGA)))  # WILL ECHO, WILL SGA
        self.screen.show(greeting[6:])
        self.client.sock.sendall(bytes((IAC, DO, ECHO, IAC, DO, SGA)))

    def type(self, keys: bytes, shows: str) -> None:
        """Send keys; wait until the line on screen reads `shows` (every key here shows something)."""
        self.client.sock.sendall(keys)
        first = True
        while first or self.screen.line != shows:
            first = False
            try:
                chunk = self.client.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the screen shows {self.screen.lines[-3:]}, not {shows!r}") from None
            assert chunk, f"closed; the screen shows {self.screen.lines[-3:]}"
            assert IAC not in chunk, chunk  # no negotiation answers: the offers were accepted
            self.screen.show(chunk)

    def enter(self, prompt: bytes = ConsoleClient.PROMPT) -> str:
        """Press Enter; the answer up to the next prompt."""
        self.client.sock.sendall(ENTER)
        answer = self.client.read_until(prompt)
        self.screen.show(answer)
        return answer.decode()


@pytest.fixture
def keys(console_factory: Callable[..., Main]) -> Iterator[Keys]:
    main = console_factory(spec("wattmeter", wattmeter, 300), spec("water", water, 300))
    typist = Keys(console_port(main))
    yield typist
    typist.client.close()


def test_typed_keys_are_echoed_and_the_cursor_keys_edit_the_line(keys: Keys) -> None:
    keys.type(b"modles", "autohome> modles")
    keys.type(LEFT * 3 + b"u", "autohome> modules")
    assert "wattmeter" in keys.enter()  # the line sent is the edited one
    keys.type(b"helpx\x7f", "autohome> help")  # backspace
    keys.type(b"\x15", "autohome>")  # Ctrl-U empties the line
    keys.type(b"status\x01\x05", "autohome> status")  # Ctrl-A, Ctrl-E move, change nothing
    keys.type(b"\x03", "autohome>")  # Ctrl-C drops the line, and nothing runs
    assert keys.screen.lines[-2:] == ["autohome> status^C", "autohome> "]


def test_up_arrow_brings_back_the_last_command(keys: Keys) -> None:
    keys.type(b"help log", "autohome> help log")
    answer = keys.enter()
    assert "follow it until Ctrl-C" in answer
    keys.type(b"status", "autohome> status")
    keys.enter()
    keys.type(UP, "autohome> status")
    keys.type(UP, "autohome> help log")
    keys.type(b"\x1b[B", "autohome> status")  # down again
    keys.type(UP, "autohome> help log")
    assert keys.enter() == answer


def test_tab_completes_commands_actions_and_module_names(keys: Keys) -> None:
    keys.type(b"mod\t", "autohome> modules")
    keys.type(b"rea\t", "autohome> modules read")
    keys.type(b"wate\t", "autohome> modules read water")
    assert "water" in keys.enter()
    keys.type(b"modules read w\t", "autohome> modules read wat")  # water, wattmeter: the common part
    keys.type(b"\t", "autohome> modules read wat")  # nothing more in common: the choices are listed
    assert keys.screen.lines[-2] == "water  wattmeter"
    keys.type(b"\t", "autohome> modules read wat")
    assert keys.screen.lines[-2] == "water  wattmeter"


def test_a_password_is_not_echoed_in_character_mode(console_factory: Callable[..., Main]) -> None:
    main = console_factory(console_password="correct horse")
    keys = Keys(console_port(main), prompt=b"password: ")
    assert keys.screen.line == "password:"
    keys.client.sock.sendall(b"correct horse")
    keys.client.sock.sendall(ENTER)
    answer = keys.client.read_until(ConsoleClient.PROMPT)
    assert b"correct" not in answer and b"welcome" in answer
    keys.client.sock.sendall(UP)
    assert keys.client.sock.recv(100) == b"\x07"  # a bell: the password is not in the history


def test_the_line_and_escape_sequences_are_bounded(keys: Keys) -> None:
    keys.type(b"\x1b[" + b"9" * 20 + b"\x15help", "autohome> help")  # an escape that never ends
    keys.type(b"\x15", "autohome>")
    keys.type(b"x" * 5000, "autohome> " + "x" * 4096)  # at most the console's line length
    keys.type(b"\x15help", "autohome> help")
    assert "modules" in keys.enter()


def test_completion_knows_what_may_come_next() -> None:
    # The words come from the console's one table of commands (commands.COMMANDS).
    commands = ["complete", "exit", "help", "log", "logout", "modules", "notifications", "notify", "quit",
                "reload", "shutdown", "status"]
    names = lambda: ["water", "weather"]  # noqa: E731
    assert complete("", BY_WORDS, names) == commands
    assert complete("no", BY_WORDS, names) == ["notifications", "notify"]
    assert complete("modules r", BY_WORDS, names) == ["read", "reload", "run"]
    assert complete("modules run we", BY_WORDS, names) == ["weather"]
    assert complete("notify ", BY_WORDS, names) == ["test"]
    assert complete("log 5 ", BY_WORDS, names) == ["-f"]
    assert complete("modules run weather ", BY_WORDS, names) == ["force"]
    assert complete("modules read weather ", BY_WORDS, names) == []
    assert complete("help mo", BY_WORDS, names) == ["modules"]


def test_the_complete_command_answers_for_clients(keys: Keys) -> None:
    keys.client.sock.sendall(bytes((IAC, 254, ECHO)))  # DONT ECHO: back to line mode
    assert keys.client.read_until(bytes((IAC, 252, ECHO))) == bytes((IAC, 252, ECHO))  # WONT ECHO
    assert keys.client.command('complete "modules read w"').split() == ["water", "wattmeter"]
    assert keys.client.command('complete "mo"').split() == ["modules"]
