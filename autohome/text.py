"""Text that AutoHome shows people: control characters made visible, long text cut.

What modules log, print and store, and what the outside world hands them (a web page's
reason phrase, a file name), reaches terminals and the console. A terminal acts on
control characters: ESC sequences move the cursor, set the window title (OSC 0) or write
the clipboard (OSC 52). So everything AutoHome writes for people goes through
`escape_controls`, and only AutoHome's own colours are sent raw.
"""

from __future__ import annotations

import enum
import re

# C0 controls but tab and line feed, DEL, C1 controls, the Unicode marks that reorder what
# follows them on the screen (bidirectional overrides and isolates, "Trojan source"), and
# lone surrogates (bytes of a file name that were not UTF-8), which no file can hold.
_OTHERS = "\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")
_NEWLINES_TOO = re.compile(f"[\x00-\x08\x0a-\x1f{_OTHERS}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with control characters shown as `\\x1b` and the like; line ends and tabs kept."""
    if _CONTROLS.search(text) is None:  # nearly always: no new string
        return text
    return _CONTROLS.sub(_escaped, text)


def one_line(text: str) -> str:
    """`text` on one line: control characters, line ends included, shown escaped."""
    if _NEWLINES_TOO.search(text) is None:
        return text
    return _NEWLINES_TOO.sub(_escaped, text)


def printable_name(name: str) -> str:
    """A file name as text a person can read: bytes that were not UTF-8 (kept by Python as
    lone surrogates) shown as `\\xe9`, control characters escaped."""
    return one_line(name)


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit:,} more characters not kept]"


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, an ellipsis standing for the rest."""
    return text if len(text) <= width else text[: width - 1] + "…"


class Word(str, enum.Enum):
    """An enum whose members are words: stored, compared and shown as the word itself
    (`f"{Outcome.OK}"` is "ok" on every Python, where a plain str-enum's differs)."""

    def __str__(self) -> str:
        return str(self.value)

