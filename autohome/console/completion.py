"""Tab completion of console lines: which words may come next, for the telnet line editor
and for `autohome console`'s readline alike."""

from __future__ import annotations

from collections.abc import Callable

# The module actions that take a module's name.
_TAKE_A_NAME = ("read", "run", "pause", "start", "stop")
FOLLOW_FLAGS = ("-f", "--follow")  # `log N -f`: go on following the log


def is_following(words: list[str]) -> bool:
    """Whether a command line's words ask `log` to follow."""
    return bool(words) and words[0].lower() == "log" and any(word in FOLLOW_FLAGS for word in words)


def complete(text: str, commands: list[str], actions: list[str],
             module_names: Callable[[], list[str]]) -> list[str]:
    """The sorted whole words that could stand where the last word of `text` is being typed;
    `text` ending in a space starts a new word. Module names are asked for only when a
    module's name may come next."""
    words = text.split()
    if text.endswith(" ") or not words:
        words.append("")
    *before, partial = words
    before = [word.lower() for word in before]
    choices: list[str] = []
    if not before or (before == ["help"]):
        choices = commands
    elif before == ["notify"]:
        choices = ["test"]
    elif before == ["notifications"]:
        choices = ["read", "resend"]
    elif before[0] == "log" and not is_following(before):
        choices = ["-f"]
    elif before == ["modules"]:
        choices = actions
    elif len(before) == 2 and before[0] == "modules" and before[1] in _TAKE_A_NAME:
        choices = module_names()
    return sorted(choice for choice in choices if choice.startswith(partial))
