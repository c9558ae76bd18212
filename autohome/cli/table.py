"""The command line, declared once: `autohome [options]` runs AutoHome, and each command of
COMMANDS is an argparse subcommand. `autohome --help`, each `autohome COMMAND --help` and
the dispatch all read this table."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from autohome import __version__
from autohome.cli.command import ListingFormatter, Parser, Streams
from autohome.cli.testmode import TEST_MODE_HELP
from autohome.control.commands import MAX_LOG_LINES

Handler = Callable[[argparse.Namespace, Streams], int]


class Command(NamedTuple):
    """One command: its line in `autohome --help`, its own --help, its arguments, its handler."""

    name: str
    usage: str  # as `autohome --help` lists it: "new NAME"
    summary: str  # the rest of that line
    description: str  # the first paragraph of `autohome NAME --help`
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def _handler(module: str, function: str) -> Handler:
    """The handler `function` of autohome/cli/MODULE.py, imported when its command runs: the
    daemon's start does not pay for the commands (docs/performance.md, "Imports")."""

    def handle(args: argparse.Namespace, streams: Streams) -> int:
        run: Handler = getattr(importlib.import_module(f"autohome.cli.{module}"), function)
        return run(args, streams)

    return handle


def _log_lines(text: str) -> int:
    """`-n N` of `autohome log`: how many entries, within what the console gives."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= count <= MAX_LOG_LINES:
        raise argparse.ArgumentTypeError(f"{count}: give a number from 0 to {MAX_LOG_LINES}")
    return count


def _env_file(help_text: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        # SUPPRESS: `autohome --env-file F status` and `autohome status --env-file F` both work.
        parser.add_argument("--env-file", metavar="FILE", type=Path, default=argparse.SUPPRESS,
                            help=help_text)
    return add


_SETTINGS = _env_file("read settings from FILE")
_CONSOLE_SETTINGS = _env_file("read the console's port and password from FILE instead of ./.env")


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the module's name: lower case letters, digits and _")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="DURATION", help='run every DURATION, such as "5m" (default)')
    when.add_argument("--at", metavar="HH:MM", help='run daily at that time, such as "08:00"')
    when.add_argument("--cron", metavar="EXPR", help='run when a cron expression says, "*/15 * * * *"')


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the module's name (its file is modules/NAME.py)")
    parser.add_argument("--notify", action="store_true", dest="send",
                        help="send its notifications (default: show them)")
    _SETTINGS(parser)


def _log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--lines", metavar="N", type=_log_lines, default=20,
                        help="how many of the last entries to show (a traceback is one; default 20)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="then show each new entry as it is written, until Ctrl-C")
    _CONSOLE_SETTINGS(parser)


def _service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["install", "uninstall", "status"])
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="show the service file or commands instead of changing anything")
    parser.add_argument("--env-file", metavar="FILE", type=Path, default=argparse.SUPPRESS,
                        help="the .env the service reads (default: ./.env, if there is one)")


COMMANDS = (
    Command("check", "check", "load every module without running any; show the next runs",
            "Load every module as AutoHome would, without running any: state, schedule and the "
            "next five runs of each.", _SETTINGS, _handler("tools", "check_modules")),
    Command("new", "new NAME",
            "write modules/NAME.py from a template (--every 5m | --at 08:00 | --cron EXPR)",
            "Write a new module from a template.", _new_arguments, _handler("tools", "new_module")),
    Command("run", "run NAME", "run one module once, now, in the foreground (--notify sends)",
            "Run one module once, now, without the daemon (and without disturbing one that runs): "
            "its log lines on the terminal.", _run_arguments, _handler("tools", "run_module")),
    Command("status", "status", "the running AutoHome's status and modules",
            "Show the running AutoHome's status and its modules.", _CONSOLE_SETTINGS,
            _handler("remote", "show_status")),
    Command("reload", "reload", "read .env again and pick up changed module files, without a restart",
            "Have the running AutoHome read .env again (what modules see counts at once) and its "
            "module files.", _CONSOLE_SETTINGS, _handler("remote", "reload")),
    Command("log", "log [-n N] [-f]", "the running AutoHome's log; -f follows it until Ctrl-C",
            "Show the running AutoHome's log (current.log, or test.log in test mode).",
            _log_arguments, _handler("remote", "show_log")),
    Command("console", "console", "the console, with history and tab completion",
            "Talk to the running AutoHome: the telnet console's commands, with history and tab "
            "completion. Ctrl-D leaves.", _CONSOLE_SETTINGS, _handler("remote", "open_console")),
    Command("service", "service ACTION", "install | uninstall | status: start AutoHome at every login",
            "Start AutoHome at login and restart it on failure (current user).",
            _service_arguments, _handler("service", "service_command")),
)

# The options that only running AutoHome takes, by their argparse names.
DAEMON_OPTIONS = {"new": "--new", "test": "--test", "start": "--start", "modules": "--modules",
                  "logs": "--logs", "data": "--data", "port": "--port", "no_console": "--no-console",
                  "web_port": "--web-port", "no_web": "--no-web", "notify": "--notify"}


def _listing() -> str:
    lines = ["commands:", f"  {'autohome [options]':<27} run AutoHome: the options above"]
    lines += [f"  {'autohome ' + command.usage:<27} {command.summary}" for command in COMMANDS]
    return "\n".join(lines + ["'autohome COMMAND --help' tells more."])


def build_parser(argv: list[str] | None = None) -> Parser:
    """The whole command line: the daemon's options, then one subcommand per COMMANDS entry.
    Given the arguments and no command among them, the subcommands are left out: starting
    the daemon does not pay for their parsers (docs/performance.md, "Imports")."""
    parser = Parser(
        prog="autohome",
        formatter_class=ListingFormatter,
        description="AutoHome: runs the Python modules in modules/ on their intervals,\n"
        "with a telnet console.",
        epilog=_listing(),
    )
    parser.add_argument("-n", "--new", action="store_true",
                        help="archive logs/current.log and start a fresh one")
    parser.add_argument("-t", "--test", action="store_true",
                        help=f"test mode: virtual time, moved from standard input ({TEST_MODE_HELP})")
    parser.add_argument("--start", metavar="TIME", type=_start_time,
                        help="with -t: where virtual time starts, local ISO time such as 2026-03-29T01:00 "
                        "(default: now)")
    parser.add_argument("--modules", metavar="DIR", help="module folder (AUTOHOME_MODULES_DIR)")
    parser.add_argument("--logs", metavar="DIR", help="log folder (AUTOHOME_LOG_DIR)")
    parser.add_argument("--data", metavar="DIR", help="state database folder (AUTOHOME_DATA_DIR)")
    parser.add_argument("--env-file", metavar="FILE", type=Path,
                        help="read settings from FILE instead of ./.env")
    parser.add_argument("--port", metavar="N", type=int,
                        help="console port, 0 for any free port (AUTOHOME_CONSOLE_PORT)")
    parser.add_argument("--no-console", action="store_true", help="do not start the console")
    parser.add_argument("--web-port", metavar="N", type=int,
                        help="status page port, 0 for any free port (AUTOHOME_WEB_PORT, default 8023)")
    parser.add_argument("--no-web", action="store_true", help="do not start the status page")
    parser.add_argument("--notify", action="store_true",
                        help="with -t: send notifications for real (test mode keeps and shows them)")
    parser.add_argument("-V", "--version", action="version", version=f"autohome {__version__}")
    parser.set_defaults(command=None)
    if argv is not None and not any(command.name in argv for command in COMMANDS):
        return parser
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, description=command.description)
        command.arguments(sub)
        sub.set_defaults(handler=command.handler)
        parser.commands[command.name] = sub
    return parser


def parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """The arguments, checked: a command takes none of the daemon's options."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser: `autohome check: error: ...`
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is not None:
        given = [flag for name, flag in DAEMON_OPTIONS.items() if getattr(args, name) not in (None, False)]
        if given:
            parser.error(f"{', '.join(given)} {'is an option' if len(given) == 1 else 'are options'} "
                         f"for running AutoHome, not for 'autohome {args.command}'")
    return args


def _start_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO form such as 2026-03-29T01:00") from None


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """The settings given as options, by their .env names: they win over .env and the environment."""
    flags = {
        "AUTOHOME_MODULES_DIR": args.modules,
        "AUTOHOME_LOG_DIR": args.logs,
        "AUTOHOME_DATA_DIR": args.data,
        "AUTOHOME_CONSOLE_PORT": None if args.port is None else str(args.port),
        "AUTOHOME_WEB_PORT": None if args.web_port is None else str(args.web_port),
    }
    return {key: value for key, value in flags.items() if value is not None}
