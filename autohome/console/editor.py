"""Server-side line editing for telnet clients in character mode: echo, cursor keys,
history and tab completion, the way MUD servers and telnetlib3 do it.

A client that agreed to let the server echo (DO ECHO) sends every key as it is pressed;
this turns those keys into the line being typed and the bytes that show it.
Everything is bounded: the line by `max_line`, an escape sequence by `MAX_ESCAPE`, the
history by `HISTORY`.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from typing import NamedTuple

from autohome.console.telnet import Event

HISTORY = 100
MAX_ESCAPE = 8
BELL = b"\x07"
ESC, TAB, CR, LF, NUL = 0x1B, 0x09, 0x0D, 0x0A, 0x00
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, CTRL_F = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
CTRL_K, CTRL_L, CTRL_N, CTRL_P, CTRL_U, CTRL_W = 0x0B, 0x0C, 0x0E, 0x10, 0x15, 0x17
BACKSPACE, DELETE = 0x08, 0x7F
# The last byte of an escape sequence, and the key it stands for.
_KEYS = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end",
         "1~": "home", "7~": "home", "4~": "end", "8~": "end", "3~": "delete"}


class Echo(NamedTuple):
    """Bytes that show the client what it typed; sent in order with the answers."""

    data: bytes


class LineEditor:
    """One connection's line being typed, its cursor, and its history."""

    def __init__(self, max_line: int, complete: Callable[[str], list[str]] | None = None) -> None:
        self.max_line = max_line
        self.complete = complete
        self.prompt = ""  # shown again when completion lists the choices
        self.secret = False  # a password: nothing is echoed, nothing is remembered
        self.history: list[str] = []
        self._chars: list[str] = []
        self._cursor = 0
        self._browsing = 0  # how far back in history the line shown is (0: the line being typed)
        self._typed: list[str] = []  # the line being typed, kept while browsing history
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._escape: str | None = None  # the escape sequence so far
        self._after_cr = False

    def key(self, byte: int, out: list[bytes | Event | Echo]) -> None:
        """Take one byte the client sent; append to `out` what it completed and shows."""
        after_cr, self._after_cr = self._after_cr, False
        if self._escape is not None:
            self._escape_byte(byte, out)
        elif byte in (CR, LF):
            if not (after_cr and byte == LF):
                self._after_cr = byte == CR
                self._enter(out)
        elif byte == NUL and after_cr:
            pass  # CR NUL is a bare Enter
        elif byte == ESC:
            self._escape = ""
        elif byte >= 0x20 and byte != DELETE:
            text = self._decoder.decode(bytes((byte,)))
            for char in text:
                self._insert(char, out)
        else:
            self._control(byte, out)

    # --- keys -----------------------------------------------------------------------

    def _control(self, byte: int, out: list[bytes | Event | Echo]) -> None:
        if byte == CTRL_C:
            self._set([], out, cursor=0, show=False)
            out.append(Event.INTERRUPT)
        elif byte == CTRL_D:
            if self._chars:
                self._delete_at_cursor(out)
            else:
                out.append(Event.END)
        elif byte in (BACKSPACE, DELETE):
            if self._cursor:
                chars = self._chars[: self._cursor - 1] + self._chars[self._cursor:]
                self._set(chars, out, self._cursor - 1)
        elif byte == TAB:
            self._complete(out)
        else:
            action = {CTRL_A: "home", CTRL_E: "end", CTRL_B: "left", CTRL_F: "right",
                      CTRL_P: "up", CTRL_N: "down"}.get(byte)
            if action is not None:
                self._move(action, out)
            elif byte == CTRL_U:
                self._set(self._chars[self._cursor:], out, 0)
            elif byte == CTRL_K:
                self._set(self._chars[: self._cursor], out, self._cursor)
            elif byte == CTRL_W:
                start = self._word_start()
                self._set(self._chars[:start] + self._chars[self._cursor:], out, start)
            elif byte == CTRL_L:
                self._show(out, "\r\n")
            # Other control bytes are not keys AutoHome knows: ignore them.

    def _escape_byte(self, byte: int, out: list[bytes | Event | Echo]) -> None:
        sequence = self._escape or ""
        char = chr(byte)
        if not sequence:
            self._escape = char if char in "[O" else None
            return
        sequence += char
        if 0x40 <= byte <= 0x7E and byte != ord("["):  # the final byte
            self._escape = None
            key = _KEYS.get(sequence[1:])
            if key == "delete":
                self._delete_at_cursor(out)
            elif key is not None:
                self._move(key, out)
            return
        self._escape = sequence if len(sequence) < MAX_ESCAPE else None

    def _move(self, key: str, out: list[bytes | Event | Echo]) -> None:
        if key in ("up", "down"):
            self._browse(1 if key == "up" else -1, out)
            return
        target = {"left": self._cursor - 1, "right": self._cursor + 1,
                  "home": 0, "end": len(self._chars)}[key]
        target = max(0, min(len(self._chars), target))
        if target < self._cursor:
            self._echo(out, "\b" * (self._cursor - target))
        elif target > self._cursor:
            self._echo(out, "".join(self._chars[self._cursor:target]))
        self._cursor = target

    def _browse(self, step: int, out: list[bytes | Event | Echo]) -> None:
        if self.secret:
            return
        target = self._browsing + step
        if not 0 <= target <= len(self.history):
            out.append(Echo(BELL))
            return
        if self._browsing == 0:
            self._typed = list(self._chars)
        self._browsing = target
        chars = list(self.history[-target]) if target else self._typed
        self._set(chars, out, len(chars))

    def _enter(self, out: list[bytes | Event | Echo]) -> None:
        line = "".join(self._chars)
        out.append(Echo(b"\r\n"))
        out.append(line.encode("utf-8"))
        if line.strip() and not self.secret and (not self.history or self.history[-1] != line):
            self.history = [*self.history[-(HISTORY - 1):], line]
        self._chars, self._cursor, self._browsing, self._typed = [], 0, 0, []
        self._decoder.reset()

    def _insert(self, char: str, out: list[bytes | Event | Echo]) -> None:
        if len("".join(self._chars).encode("utf-8")) + len(char.encode("utf-8")) > self.max_line:
            out.append(Echo(BELL))
            return
        if self._cursor == len(self._chars):  # typing at the end: show just the character
            self._chars.append(char)
            self._cursor += 1
            self._echo(out, char)
            return
        chars = self._chars[: self._cursor] + [char] + self._chars[self._cursor:]
        self._set(chars, out, self._cursor + 1)

    def _delete_at_cursor(self, out: list[bytes | Event | Echo]) -> None:
        if self._cursor < len(self._chars):
            self._set(self._chars[: self._cursor] + self._chars[self._cursor + 1:], out, self._cursor)

    def _word_start(self) -> int:
        start = self._cursor
        while start and self._chars[start - 1] == " ":
            start -= 1
        while start and self._chars[start - 1] != " ":
            start -= 1
        return start

    def _complete(self, out: list[bytes | Event | Echo]) -> None:
        if self.secret or self.complete is None:
            out.append(Echo(BELL))
            return
        before = "".join(self._chars[: self._cursor])
        word = before[self._word_start():]
        choices = self.complete(before)
        if not choices:
            out.append(Echo(BELL))
            return
        common = os.path.commonprefix(choices)
        addition = common[len(word):] + (" " if len(choices) == 1 else "")
        if addition:
            for char in addition:
                self._insert(char, out)
            return
        self._show(out, "\r\n" + "  ".join(choices) + "\r\n")

    # --- showing the line -----------------------------------------------------------

    def _set(self, chars: list[str], out: list[bytes | Event | Echo], cursor: int,
             show: bool = True) -> None:
        """Replace the line and put the cursor at `cursor`, redrawing from the line's start."""
        old_length = len(self._chars)
        text = "\b" * self._cursor + "".join(chars)
        if old_length > len(chars):
            text += " " * (old_length - len(chars)) + "\b" * (old_length - len(chars))
        text += "\b" * (len(chars) - cursor)
        self._chars, self._cursor = chars, cursor
        if show:
            self._echo(out, text)

    def _show(self, out: list[bytes | Event | Echo], before: str) -> None:
        """Write `before`, the prompt and the whole line again, the cursor where it was."""
        line = "" if self.secret else "".join(self._chars) + "\b" * (len(self._chars) - self._cursor)
        self._echo(out, before + self.prompt + line, secret_too=True)

    def _echo(self, out: list[bytes | Event | Echo], text: str, secret_too: bool = False) -> None:
        if text and (not self.secret or secret_too):
            out.append(Echo(text.encode("utf-8")))
