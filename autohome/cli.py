"""The command line: parse arguments, build the real objects, run Main, return an exit code."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import IO, NoReturn
from zoneinfo import ZoneInfo

from autohome import __version__, service
from autohome.app import Main
from autohome.clock import (
    TEST_MODE_HELP,
    LineFeed,
    SystemClock,
    VirtualClock,
    Waker,
    system_zone,
    terminal_prompt,
    utc_now,
)
from autohome.config import Config, load_config
from autohome.db import DB_FILE, TEST_DB_FILE, open_database
from autohome.errors import AutoHomeError, ConfigError
from autohome.loader import discover_modules
from autohome.logs import archive_current_log, setup_logging
from autohome.notify import PushoverClient

log = logging.getLogger("autohome.cli")

EXIT_OK = 0
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = _Parser(
        prog="autohome",
        description="AutoHome: runs the Python modules in modules/ on their intervals, "
        "with a telnet console.",
        epilog="To run AutoHome in the background at every login: "
        "autohome service install|uninstall|status [--print] [--env-file FILE]",
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
    parser.add_argument("--version", action="version", version=f"autohome {__version__}")
    return parser


def _start_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO form such as 2026-03-29T01:00") from None


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    flags = {
        "AUTOHOME_MODULES_DIR": args.modules,
        "AUTOHOME_LOG_DIR": args.logs,
        "AUTOHOME_DATA_DIR": args.data,
        "AUTOHOME_CONSOLE_PORT": None if args.port is None else str(args.port),
    }
    return {key: value for key, value in flags.items() if value is not None}


def _check_folders(config: Config) -> None:
    if not config.modules_dir.is_dir():
        raise ConfigError(
            f"AUTOHOME_MODULES_DIR={str(config.modules_dir)!r}: no such folder; "
            "create it or point AUTOHOME_MODULES_DIR (or --modules) at your modules"
        )
    try:
        config.log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"AUTOHOME_LOG_DIR={str(config.log_dir)!r} cannot be created: {exc.strerror}"
        ) from exc


def _wants_colour(stream: IO[str], environ: Mapping[str, str]) -> bool:
    return "NO_COLOR" not in environ and hasattr(stream, "isatty") and stream.isatty()


def _install_signal_handlers(request_stop: Callable[[], None], waker: Waker) -> None:
    """Ctrl-C and SIGTERM ask for a clean shutdown; only the main thread may install handlers.

    The waker's socket becomes the wakeup fd, so a signal that lands on any thread wakes
    the sleeping main thread at once, which then runs the handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.set_wakeup_fd(waker.signal_fd, warn_on_full_buffer=False)

    def handle(signum: int, _frame: object) -> None:
        # Set the stop event from a fresh thread: locks taken inside a signal handler
        # can deadlock with the very code the handler interrupted.
        threading.Thread(target=request_stop, name=f"signal-{signum}").start()

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handle)


def _in_zone(moment: datetime, zone: tzinfo) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc)


def service_main(argv: Sequence[str], environ: Mapping[str, str], out: IO[str]) -> int:
    """`autohome service install|uninstall|status [--print] [--env-file FILE]`."""
    parser = _Parser(prog="autohome service",
                     description="Start AutoHome at login and restart it on failure (current user).")
    parser.add_argument("action", choices=["install", "uninstall", "status"])
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="show the service file or commands instead of changing anything")
    parser.add_argument("--env-file", metavar="FILE", type=Path,
                        help="the .env the service reads (default: ./.env, if there is one)")
    args = parser.parse_args(argv)
    project = Path.cwd().resolve()
    env_file = args.env_file or (project / ".env" if (project / ".env").is_file() else None)
    if env_file is not None:
        env_file = env_file.resolve()
    config_home = environ.get("XDG_CONFIG_HOME")
    plan = service.plan_for(sys.platform, Path.home(), Path(sys.executable), project, env_file,
                            Path(config_home) if config_home else None)
    action = {"install": service.install, "uninstall": service.uninstall, "status": service.status}
    return action[args.action](plan, service.run_command, out, args.print_only)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run AutoHome until it is shut down; return the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["service"]:
        return service_main(argv[1:], os.environ if environ is None else environ, sys.stdout)
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    try:
        config = load_config(environ, args.env_file, _overrides(args))
        if args.no_console:
            config = dataclasses.replace(config, console_enabled=False)
        _check_folders(config)
        archived = archive_current_log(config.log_dir) if args.new else None
        db = open_database(config.data_dir, TEST_DB_FILE if args.test else DB_FILE)
    except (AutoHomeError, OSError) as exc:
        stderr.write(f"autohome: error: {exc}\n")
        return EXIT_USAGE

    logging_setup = setup_logging(
        config.log_dir, config.log_level, terminal=stderr, colour=_wants_colour(stderr, environ),
        max_bytes=int(config.log_max_mb * 1024 * 1024), keep=config.log_keep,
    )
    try:
        if archived is not None:
            log.info("archived the previous log as %s", archived)
        if config.env_file is not None:
            log.info("settings read from %s", config.env_file)
        client = None
        if config.has_pushover:
            client = PushoverClient(config.pushover_token, config.pushover_user,
                                    config.pushover_api_url)
        else:
            log.info("Pushover not configured (PUSHOVER_TOKEN, PUSHOVER_USER): notifications "
                     "are kept, and sent once both are set")
        zone = ZoneInfo(config.timezone) if config.timezone else system_zone(environ)
        waker = Waker()
        if args.test:
            start = utc_now() if args.start is None else _in_zone(args.start, zone)
            clock: SystemClock | VirtualClock = VirtualClock(
                start, LineFeed(stdin, waker), prompt=terminal_prompt(before=logging_setup.flush)
            )
            logging_setup.stamp_with(clock.now)
            log.info("test mode: virtual time starts at %s (state in %s); %s",
                     start.astimezone(zone).isoformat(timespec="seconds"),
                     config.data_dir / TEST_DB_FILE, TEST_MODE_HELP)
        else:
            clock = SystemClock(waker)
        main_loop = Main(
            config,
            clock=clock,
            client=client,
            modules=discover_modules(config.modules_dir, zone),
            db=db,
            settle_each_tick=args.test,
            zone=zone,
            logs=logging_setup,
        )
        _install_signal_handlers(main_loop.request_stop, waker)
        # Everything built so far lives as long as the process: keep the cyclic garbage
        # collector from walking it again and again while AutoHome idles.
        gc.freeze()
        main_loop.run()
        return EXIT_OK
    finally:
        db.close()
        logging_setup.close()
