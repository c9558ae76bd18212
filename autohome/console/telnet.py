"""The telnet side of the console: strip and answer option bytes (RFC 854/855/857/858/860),
split lines.

The server offers to echo and to suppress go-ahead (WILL ECHO, WILL SGA). A client that
agrees to the echo (DO ECHO) sends each key as it is pressed, and the server edits the
line (see editor.py); a client that refuses, or never answers (nc, scripts), stays in
line mode with its own echo. Every other option is refused, and an option already in the
state asked for is not answered again, so negotiation cannot loop (RFC 1143's rule).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from autohome.text import escape_controls

IAC, DONT, DO, WONT, WILL, SB = 255, 254, 253, 252, 251, 250
GA, EL, EC, AYT, AO, IP, BRK, DM, NOP, SE, EOF = 249, 248, 247, 246, 245, 244, 243, 242, 241, 240, 236
ECHO, SGA, TIMING_MARK = 1, 3, 6
CTRL_C, CTRL_D, BACKSPACE, DELETE = 0x03, 0x04, 0x08, 0x7F
CR, LF, NUL = 0x0D, 0x0A, 0x00

MAX_SUBNEGOTIATION = 1024
# Telnet's own commands for editing keys, as the keys themselves (for the line editor).
_AS_KEY = {IAC: IAC, IP: CTRL_C, BRK: CTRL_C, EOF: CTRL_D, EC: DELETE, EL: 0x15}  # 0x15: Ctrl-U


class Event(enum.Enum):
    """What a client did besides sending a line."""

    INTERRUPT = "interrupt"  # Ctrl-C: drop the line being typed
    END = "end"  # Ctrl-D on an empty line: the client wants to leave
    ARE_YOU_THERE = "are-you-there"
    LINE_TOO_LONG = "line-too-long"
    SUB_TOO_LONG = "subnegotiation-too-long"  # an IAC SB with no end: the connection is closed


class Received(NamedTuple):
    """The result of feeding bytes: complete lines, events, and bytes to send back."""

    lines: list[Any]  # bytes (a line), Event, or editor.Echo (what the client typed, shown)
    reply: bytes


class Option(enum.Enum):
    """Where one of the server's own options stands."""

    OFF = 0
    OFFERED = 1  # WILL sent, no answer yet
    ON = 2


class _State(enum.Enum):
    DATA = 0
    IAC = 1
    OPTION = 2
    SUB = 3
    SUB_IAC = 4


class TelnetReader:
    """Turns raw bytes from a telnet client into lines, events and negotiation replies."""

    def __init__(self, max_line: int = 4096,
                 editor: Callable[[int, list[Any]], None] | None = None) -> None:
        self.max_line = max_line
        self.editor = editor  # takes each data byte while the client lets the server echo
        self.options = {ECHO: Option.OFF, SGA: Option.OFF}
        self._state = _State.DATA
        self._verb = 0
        self._line = bytearray()
        self._too_long = False
        self._after_cr = False
        self._sub_length = 0

    def offer(self) -> bytes:
        """The bytes that offer character mode (sent once, at connect)."""
        for option in self.options:
            self.options[option] = Option.OFFERED
        return bytes((IAC, WILL, ECHO, IAC, WILL, SGA))

    @property
    def is_editing(self) -> bool:
        """The client agreed that the server echoes: it sends keys, not lines."""
        return self.editor is not None and self.options[ECHO] is Option.ON

    def feed(self, data: bytes) -> Received:
        """Consume bytes; return what they completed."""
        out: list[Any] = []
        reply = bytearray()
        for byte in data:
            state = self._state
            if state is _State.DATA:
                if byte == IAC:
                    self._state = _State.IAC
                elif self.editor is not None and self.is_editing:
                    self.editor(byte, out)
                else:
                    self._data(byte, out)
            elif state is _State.IAC:
                self._state = _State.DATA
                self._command(byte, out, reply)
            elif state is _State.OPTION:
                self._state = _State.DATA
                self._option(self._verb, byte, reply)
            elif state is _State.SUB:
                # Sub-negotiation is discarded; only its length is counted, so memory stays flat.
                if byte == IAC:
                    self._state = _State.SUB_IAC
                else:
                    self._sub_length += 1
                    if self._sub_length > MAX_SUBNEGOTIATION:
                        self._state = _State.DATA
                        out.append(Event.SUB_TOO_LONG)
            else:  # SUB_IAC
                self._state = _State.DATA if byte == SE else _State.SUB
        return Received(out, bytes(reply))

    def _command(self, byte: int, out: list[Any], reply: bytearray) -> None:
        if byte in _AS_KEY and self.editor is not None and self.is_editing:
            self.editor(_AS_KEY[byte], out)  # the editor keeps the line
        elif byte == IAC:
            self._data(IAC, out)
        elif byte in (DO, DONT, WILL, WONT):
            self._verb = byte
            self._state = _State.OPTION
        elif byte == SB:
            self._sub_length = 0
            self._state = _State.SUB
        elif byte in (IP, BRK):
            self._discard_line()
            out.append(Event.INTERRUPT)
        elif byte == EOF:
            self._end(out)
        elif byte == AYT:
            out.append(Event.ARE_YOU_THERE)
        elif byte == EC:
            self._erase_char()
        elif byte == EL:
            self._discard_line()
        # NOP, GA, DM, AO and anything unknown carry no data: ignore them.

    def _option(self, verb: int, option: int, reply: bytearray) -> None:
        # The server's own ECHO and SGA: agree once, and answer only a change of state.
        # Everything else is refused; DONT and WONT ask for what is already so and get no
        # answer. DO TIMING-MARK is answered every time: the client hides output until it is.
        state = self.options.get(option)
        if state is not None and verb == DO:
            if state is Option.OFF:
                reply += bytes((IAC, WILL, option))
            self.options[option] = Option.ON
        elif state is not None and verb == DONT:
            if state is Option.ON:
                reply += bytes((IAC, WONT, option))
            self.options[option] = Option.OFF
        elif verb == DO:
            reply += bytes((IAC, WONT, option))
        elif verb == WILL:
            reply += bytes((IAC, DONT, option))

    def _data(self, byte: int, out: list[bytes | Event]) -> None:
        after_cr, self._after_cr = self._after_cr, False
        if after_cr and byte in (LF, NUL):
            return
        if byte in (CR, LF):
            self._after_cr = byte == CR
            self._finish_line(out)
        elif byte == CTRL_C:
            self._discard_line()
            out.append(Event.INTERRUPT)
        elif byte == CTRL_D:
            self._end(out)
        elif byte in (BACKSPACE, DELETE):
            self._erase_char()
        elif not self._too_long:
            if len(self._line) >= self.max_line:
                self._too_long = True
                self._line.clear()
            else:
                self._line.append(byte)

    def _finish_line(self, out: list[bytes | Event]) -> None:
        out.append(Event.LINE_TOO_LONG if self._too_long else bytes(self._line))
        self._discard_line()

    def _end(self, out: list[bytes | Event]) -> None:
        if not self._line and not self._too_long:
            out.append(Event.END)

    def _erase_char(self) -> None:
        if self._line:
            del self._line[-1]

    def _discard_line(self) -> None:
        self._line.clear()
        self._too_long = False


def escape(text: str) -> bytes:
    """Encode a reply for the wire: control characters shown escaped (a module's text must not
    drive the client's terminal: text.py), UTF-8, CR LF line ends, 0xFF doubled."""
    text = escape_controls(text.replace("\r\n", "\n"))
    data = text.replace("\n", "\r\n").encode("utf-8", errors="replace")
    return data.replace(bytes((IAC,)), bytes((IAC, IAC)))
