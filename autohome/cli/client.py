"""`autohome status`, `autohome log` and `autohome console`: talking to the running daemon
through its console port, found the way the daemon chose it (.env, else 23, else 2323).

The client refuses the console's offer of character mode (DONT ECHO, DONT SGA), so the
console stays in line mode and answers whole lines; the interactive client edits with
readline on this side instead.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from autohome.config import CONSOLE_PORT, FALLBACK_CONSOLE_PORT, Config
from autohome.console import session
from autohome.console.telnet import DO, DONT, IAC, IP, SB, SE, WILL, WONT

PROMPT, PASSWORD_PROMPT = session.PROMPT.encode(), session.PASSWORD_PROMPT.encode()
CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 60.0  # a command's answer; following the log waits without end


class NoDaemon(Exception):
    """No AutoHome console answers where the daemon would listen."""


class ConsoleGone(Exception):
    """The daemon closed the connection (shutdown, quit, or it stopped)."""


def addresses(config: Config) -> list[tuple[str, int]]:
    """Where the daemon's console would be: the configured port, or 23 and then 2323."""
    host = config.console_host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if config.console_port_given:
        return [(host, config.console_port)]
    return [(host, CONSOLE_PORT), (host, FALLBACK_CONSOLE_PORT)]


class _Unwrap:
    """Takes telnet's option bytes out of what the console sends, and refuses each offer once."""

    def __init__(self) -> None:
        self._pending = b""
        self._answered: set[tuple[int, int]] = set()

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """The text in `data`, and the bytes to send back."""
        data, self._pending = self._pending + data, b""
        text, reply = bytearray(), bytearray()
        index = 0
        while index < len(data):
            byte = data[index]
            if byte != IAC:
                text.append(byte)
                index += 1
                continue
            if index + 1 >= len(data):
                self._pending = data[index:]
                break
            verb = data[index + 1]
            if verb == IAC:
                text.append(IAC)
                index += 2
            elif verb in (WILL, WONT, DO, DONT):
                if index + 2 >= len(data):
                    self._pending = data[index:]
                    break
                option = data[index + 2]
                answer = {WILL: DONT, DO: WONT}.get(verb)
                if answer is not None and (verb, option) not in self._answered:
                    self._answered.add((verb, option))
                    reply += bytes((IAC, answer, option))
                index += 3
            elif verb == SB:
                end = data.find(bytes((IAC, SE)), index)
                if end < 0:
                    self._pending = data[index:]
                    break
                index = end + 2
            else:
                index += 2
        return bytes(text), bytes(reply)


class ConsoleConnection:
    """One connection to the daemon's console, logged in and at the prompt."""

    def __init__(self, config: Config) -> None:
        self.sock = self._connect(addresses(config))
        self._unwrap = _Unwrap()
        self._buffer = b""
        greeting = self.read_until_prompt()
        if greeting.endswith(PASSWORD_PROMPT):
            if not config.console_password:
                raise NoDaemon("the console asks for a password: set AUTOHOME_CONSOLE_PASSWORD in .env "
                               "to the daemon's")
            answer = self.exchange(config.console_password)
            if "welcome" not in answer:
                raise NoDaemon(f"the console refused AUTOHOME_CONSOLE_PASSWORD: {answer.strip()}")
        self.address = self.sock.getpeername()[:2]

    @staticmethod
    def _connect(candidates: list[tuple[str, int]]) -> socket.socket:
        for host, port in candidates:
            try:
                return socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                continue
        where = " or ".join(f"{host}:{port}" for host, port in candidates)
        raise NoDaemon(f"no AutoHome console answers on {where}: is AutoHome running? Start it with "
                       "'python main.py' (or 'autohome'); if its console is on another port, set "
                       "AUTOHOME_CONSOLE_PORT in .env")

    def _receive(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConsoleGone(_text(self._buffer))  # what it said last (`bye`, `shutting down`)
        text, reply = self._unwrap.feed(chunk)
        if reply:
            self.sock.sendall(reply)
        return text

    def read_until_prompt(self, out: IO[str] | None = None) -> bytes:
        """What comes before the next prompt (with the prompt); written to `out` as it comes,
        when given (following the log)."""
        while not self._buffer.endswith((PROMPT, PASSWORD_PROMPT)):
            self._buffer += self._receive()
            if out is not None:
                # Everything but a tail that could be the start of the prompt: the prompt
                # comes at the start of a line, so the end of a line is never held back.
                cut = len(self._buffer) - _prompt_start(self._buffer)
                ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
                out.write(_text(ready))
                out.flush()
        answer, self._buffer = self._buffer, b""
        return answer

    def exchange(self, line: str, out: IO[str] | None = None) -> str:
        """Send a line; return its answer without the prompt (or write it to `out` as it comes)."""
        self.sock.settimeout(None if out is not None else ANSWER_TIMEOUT_S)
        self.sock.sendall(line.encode("utf-8") + b"\r\n")
        answer = self.read_until_prompt(out)
        for prompt in (PROMPT, PASSWORD_PROMPT):
            answer = answer.removesuffix(prompt)
        return _text(answer)

    def interrupt(self) -> None:
        """Ctrl-C: stop following the log."""
        self.sock.sendall(bytes((IAC, IP)))

    def close(self) -> None:
        """Leave politely."""
        try:
            self.sock.sendall(b"quit\r\n")
        except OSError:
            pass  # it is gone already
        self.sock.close()


def _prompt_start(data: bytes) -> int:
    """How many bytes at the end of `data` could be the beginning of a prompt (0: none)."""
    line_start = data.rfind(b"\n") + 1
    tail = data[line_start:]
    for prompt in (PROMPT, PASSWORD_PROMPT):
        if tail and prompt.startswith(tail):
            return len(tail)
    return 0


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def history_file(environ: Mapping[str, str], home: Path, windows: bool) -> Path:
    """Where `autohome console` keeps its history: the user's state folder."""
    if windows and environ.get("LOCALAPPDATA"):
        return Path(environ["LOCALAPPDATA"]) / "autohome" / "history"
    state = environ.get("XDG_STATE_HOME")
    return (Path(state) if state else home / ".local" / "state") / "autohome" / "history"
