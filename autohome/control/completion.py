"""Tab completion of console lines: which words may come next, for the telnet line editor
and for `autohome console`'s readline alike. What each command's arguments complete to is
declared with the command (commands.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

FOLLOW_FLAGS = ("-f", "--follow")  # `log N -f`: go on following the log


class Completable(Protocol):
    """A command as completion sees it (commands.Command)."""

    @property
    def completes(self) -> Callable[[list[str], Callable[[], list[str]]], list[str]]:
        """The words its next argument may be, given the arguments typed and the module names."""
        ...


def is_following(words: list[str]) -> bool:
    """Whether a command line's words ask `log` to follow."""
    return bool(words) and words[0].lower() == "log" and any(word in FOLLOW_FLAGS for word in words)


def complete(text: str, commands: Mapping[tuple[str, ...], Completable],
             module_names: Callable[[], list[str]]) -> list[str]:
    """The sorted whole words that could stand where the last word of `text` is being typed;
    `text` ending in a space starts a new word. `commands` holds each command by the words
    that name it. Module names are asked for only when a module's name may come next."""
    words = text.split()
    if text.endswith(" ") or not words:
        words.append("")
    *before, partial = words
    before = [word.lower() for word in before]
    choices: list[str] = []
    if not before:
        choices = [names[0] for names in commands if names[0].isalpha()]
    else:
        choices = [names[1] for names in commands if len(before) == 1 and len(names) == 2
                   and names[0] == before[0]]  # `modules ` : its actions
        if not choices:
            command = commands.get(tuple(before[:2])) if len(before) > 1 else None
            typed = before[2:]
            if command is None:
                command, typed = commands.get(tuple(before[:1])), before[1:]
            if command is not None:
                choices = command.completes(typed, module_names)
    return sorted({choice for choice in choices if choice.startswith(partial)})
