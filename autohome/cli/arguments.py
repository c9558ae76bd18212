"""The command line's words: `autohome [options]` and `autohome service ...`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, NoReturn

from autohome import __version__
from autohome.cli.testmode import TEST_MODE_HELP

EXIT_USAGE = 2


class _Formatter(argparse.HelpFormatter):
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


class _Listing(argparse.RawDescriptionHelpFormatter, _Formatter):
    """The same, with the epilog as written: one line per command."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = Parser(
        prog="autohome",
        formatter_class=_Listing,
        description="AutoHome: runs the Python modules in modules/ on their intervals,\n"
        "with a telnet console.",
        epilog="commands:\n"
        "  autohome [options]          run AutoHome: the options above\n"
        "  autohome check              load every module without running any; show the next runs\n"
        "  autohome new NAME           write modules/NAME.py from a template "
        "(--every 5m | --at 08:00 | --cron EXPR)\n"
        "  autohome run NAME           run one module once, now, in the foreground (--notify sends)\n"
        "  autohome status             the running AutoHome's status and modules\n"
        "  autohome log [-n N] [-f]    the running AutoHome's log; -f follows it until Ctrl-C\n"
        "  autohome console            the console, with history and tab completion\n"
        "  autohome service ACTION     install | uninstall | status: start AutoHome at every login\n"
        "'autohome COMMAND --help' tells more.",
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
    return parser


def _start_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO form such as 2026-03-29T01:00") from None


def overrides(args: argparse.Namespace) -> dict[str, str]:
    flags = {
        "AUTOHOME_MODULES_DIR": args.modules,
        "AUTOHOME_LOG_DIR": args.logs,
        "AUTOHOME_DATA_DIR": args.data,
        "AUTOHOME_CONSOLE_PORT": None if args.port is None else str(args.port),
        "AUTOHOME_WEB_PORT": None if args.web_port is None else str(args.web_port),
    }
    return {key: value for key, value in flags.items() if value is not None}


def service_main(argv: Sequence[str], environ: Mapping[str, str], out: IO[str], workdir: Path) -> int:
    """`autohome service install|uninstall|status [--print] [--env-file FILE]`."""
    from autohome.cli import service  # subprocess and plistlib: only this command needs them

    parser = Parser(prog="autohome service",
                     description="Start AutoHome at login and restart it on failure (current user).")
    parser.add_argument("action", choices=["install", "uninstall", "status"])
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="show the service file or commands instead of changing anything")
    parser.add_argument("--env-file", metavar="FILE", type=Path,
                        help="the .env the service reads (default: ./.env, if there is one)")
    args = parser.parse_args(argv)
    project = workdir.resolve()
    env_file = args.env_file or (project / ".env" if (project / ".env").is_file() else None)
    if env_file is not None:
        env_file = env_file.resolve()
    config_home = environ.get("XDG_CONFIG_HOME")
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    plan = service.plan_for(sys.platform, home, Path(sys.executable), project, env_file,
                            Path(config_home) if config_home else None)
    if args.action == "install":
        _warn_about_port_23(env_file, environ, out)
    action = {"install": service.install, "uninstall": service.uninstall, "status": service.status}
    return action[args.action](plan, lambda command: service.run_command(command, environ), out,
                               args.print_only)


def _warn_about_port_23(env_file: Path | None, environ: Mapping[str, str], out: IO[str]) -> None:
    """A service runs as you, without the rights to port 23: say where its console will be."""
    from autohome.config import read_env_file

    values = read_env_file(env_file)[0] if env_file is not None else {}
    port = (environ.get("AUTOHOME_CONSOLE_PORT") or values.get("AUTOHOME_CONSOLE_PORT") or "").strip()
    if port in ("", "23"):
        out.write("warning: the service's console would use port 23, which needs administrator rights: "
                  + ("it will listen on 2323 instead" if not port else "it will have no console")
                  + "; set AUTOHOME_CONSOLE_PORT in .env to choose the port\n")
