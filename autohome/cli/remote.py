"""`autohome status`, `autohome log [-n N] [-f]` and `autohome console`: the daemon's console
from the command line. Exit 0 on success, 1 when no daemon answers, 2 on bad usage."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from autohome.cli.client import ConsoleConnection, ConsoleGone, NoDaemon, history_file
from autohome.cli.command import EXIT_FAILED, EXIT_OK, Streams
from autohome.config import Config, load_config
from autohome.control.completion import is_following
from autohome.errors import AutoHomeError

HISTORY_LINES = 1000


def _connected(name: str, args: argparse.Namespace, streams: Streams) -> ConsoleConnection | int:
    try:
        config: Config = load_config(streams.environ, getattr(args, "env_file", None), base=streams.workdir)
    except AutoHomeError as exc:
        return streams.fail(name, str(exc))
    try:
        return ConsoleConnection(config)
    except (NoDaemon, ConsoleGone, OSError) as exc:
        streams.stderr.write(f"autohome {name}: {exc or 'the console closed the connection'}\n")
        return EXIT_FAILED


def show_status(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome status`: ask the running daemon how it and its modules are doing."""
    out = streams.stdout
    connection = _connected("status", args, streams)
    if isinstance(connection, int):
        return connection
    try:
        out.write(connection.exchange("status"))
        out.write(connection.exchange("modules"))
    finally:
        connection.close()
    return EXIT_OK


def reload(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome reload`: the console's `reload`, from the command line."""
    connection = _connected("reload", args, streams)
    if isinstance(connection, int):
        return connection
    try:
        streams.stdout.write(connection.exchange("reload"))
    finally:
        connection.close()
    return EXIT_OK


def show_log(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome log`: the daemon's last entries, then, with -f, each new one until Ctrl-C."""
    out, err = streams.stdout, streams.stderr
    connection = _connected("log", args, streams)
    if isinstance(connection, int):
        return connection
    try:
        if not args.follow:
            out.write(connection.exchange(f"log {args.lines}"))
            return EXIT_OK
        _follow(connection, f"log {args.lines} -f", out)
        return EXIT_OK
    except ConsoleGone as gone:
        out.write(str(gone))
        err.write("autohome log: AutoHome closed the connection (it is shutting down)\n")
        return EXIT_OK
    finally:
        connection.close()


def _follow(connection: ConsoleConnection, line: str, out: IO[str]) -> None:
    """Show the answer as it comes until Ctrl-C; then stop following and go back to the prompt."""
    try:
        connection.exchange(line, out=out)
    except KeyboardInterrupt:
        connection.interrupt()
        connection.read_until_prompt()


def open_console(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome console`: line editing, history in the user's state folder, and tab
    completion of commands and module names. Piped input runs one command a line."""
    stdin, out, err, environ = streams.stdin, streams.stdout, streams.stderr, streams.environ
    connection = _connected("console", args, streams)
    if isinstance(connection, int):
        return connection
    interactive = stdin is sys.stdin and stdin.isatty()
    save_history = _readline(connection, environ, err) if interactive else lambda: None
    if interactive:
        host, port = connection.address
        out.write(f"AutoHome console at {host}:{port}. Type 'help' for commands, Ctrl-D to leave.\n")
    try:
        while True:
            line = _next_line(stdin, out, interactive)
            if line is None:
                return EXIT_OK
            if not line.strip():
                continue
            if is_following(line.split()):
                _follow(connection, line, out)
            else:
                out.write(connection.exchange(line))
    except ConsoleGone as gone:
        out.write(str(gone))
        return EXIT_OK
    finally:
        save_history()
        connection.close()


def _next_line(stdin: IO[str], out: IO[str], interactive: bool) -> str | None:
    """The next command line; None at the end of input (Ctrl-D)."""
    if not interactive:
        line = stdin.readline()
        return line.rstrip("\n") if line else None
    while True:
        try:
            return input("autohome> ")
        except EOFError:
            out.write("\n")
            return None
        except KeyboardInterrupt:
            out.write("^C\n")


def _readline(connection: ConsoleConnection, environ: Mapping[str, str],
              err: IO[str]) -> Callable[[], None]:
    """Set up readline (where Python has it) with the daemon's completion and the history
    file; return what saves the history."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return lambda: None
    path = history_file(environ, Path.home(), sys.platform == "win32")
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # the first session: no history yet
    readline.set_history_length(HISTORY_LINES)

    choices: list[str] = []

    def complete(text: str, state: int) -> str | None:
        """readline asks for choice 0, 1, 2, ... of the word at the cursor; the daemon knows them."""
        if state == 0:
            before = readline.get_line_buffer()[: readline.get_endidx()]
            try:
                answer = connection.exchange(f"complete {shlex.quote(before)}")
            except (OSError, ConsoleGone):
                answer = ""
            choices[:] = [choice + " " for choice in answer.split()]
        return choices[state] if state < len(choices) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" ")
    libedit = "libedit" in (readline.__doc__ or "")  # macOS's readline
    readline.parse_and_bind("bind ^I rl_complete" if libedit else "tab: complete")

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError as exc:
            err.write(f"autohome console: history not saved to {path}: {exc.strerror}\n")

    return save
