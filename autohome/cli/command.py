"""What every command-line command is handed and returns: its streams, its working folder
and environment (a test's own, or the process's), an exit code, and argparse's parser with
errors of one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple, NoReturn

EXIT_OK = 0
EXIT_FAILED = 1  # what the command ran failed, or no AutoHome answered
EXIT_USAGE = 2  # bad arguments, settings or files: the message says which


class Streams(NamedTuple):
    """Where a command reads and writes, and where it runs from."""

    stdin: IO[str]
    stdout: IO[str]
    stderr: IO[str]
    environ: Mapping[str, str]
    workdir: Path  # .env and relative folders count from here

    def fail(self, command: str, message: str) -> int:
        """Say on stderr why the command cannot run; the exit code for bad usage."""
        self.stderr.write(f"autohome {command}: error: {message}\n")
        return EXIT_USAGE


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, with the width read from the terminal by `os` rather than by
    importing shutil, which every parse would otherwise pay for at start-up."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS", "")) - 2
            except ValueError:
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns - 2  # type: ignore[union-attr]
                except (AttributeError, OSError, ValueError):
                    width = 78
        super().__init__(prog, indent_increment, max_help_position, width)


class ListingFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The same, with the epilog as written: one line per command."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, with exit code 2."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # its subcommands' parsers, by name

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")
