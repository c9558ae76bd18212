"""`autohome [options]`: parse the command line (table.py), then run a command or AutoHome
itself: the real objects built, Main run until it stops, an exit code returned."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from autohome.app import build
from autohome.cli.command import EXIT_USAGE, Streams
from autohome.cli.leftovers import blocking_threads, describe, exit_now
from autohome.cli.table import Handler, build_parser, overrides, parse
from autohome.cli.testmode import TEST_MODE_HELP, VirtualClock, typed_lines
from autohome.clock import SystemClock, Waker, system_zone, utc_now
from autohome.config import Config, load_config
from autohome.errors import AutoHomeError, ConfigError
from autohome.logs.archive import CURRENT_LOG, TEST_LOG, archive_current_log
from autohome.logs.setup import LogSetup, setup_logging
from autohome.logs.tree import get_logger
from autohome.notifications.channels import Channel, make_channels
from autohome.running.capture import OutputCapture
from autohome.running.crashes import CrashIsolation, CrashRecorder, end_streak, report_crash
from autohome.storage.db import DB_FILE, TEST_DB_FILE, Database, open_database
from autohome.storage.instance import InstanceLock

log = get_logger("autohome.cli")

EXIT_OK = 0
EXIT_DEAF = 1  # AutoHome's own descriptors were closed under it (descriptors.py)


def _check_folders(config: Config, log_name: str) -> None:
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
    current = config.log_dir / log_name
    existed = current.exists()
    try:
        with current.open("a", encoding="utf-8"):
            pass
        if not existed:
            current.unlink()  # only a test: -n must not find an empty file to archive
    except OSError as exc:
        raise ConfigError(f"log file {current} cannot be written: {exc.strerror or exc}; make "
                          "AUTOHOME_LOG_DIR (or --logs) a folder AutoHome may write to") from exc
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"AUTOHOME_DATA_DIR={str(config.data_dir)!r} cannot be created: "
                          f"{exc.strerror}; set it (or --data) to a writable folder") from exc


def _log_name(args: argparse.Namespace) -> str:
    """Test mode writes logs/test.log, so virtual-time lines never mix into current.log."""
    return TEST_LOG if args.test else CURRENT_LOG


def _wants_colour(stream: IO[str], environ: Mapping[str, str]) -> bool:
    return "NO_COLOR" not in environ and hasattr(stream, "isatty") and stream.isatty()


def _install_signal_handlers(request_stop: Callable[[], None], waker: Waker) -> Callable[[], None]:
    """Ctrl-C, SIGTERM, SIGHUP (the terminal closed; POSIX) and SIGBREAK (Windows) ask for a
    clean shutdown. Only the main thread may install handlers; returns what puts the
    previous ones back (an in-process caller, such as a test, gets its own handlers back).

    The waker's socket becomes the wakeup fd, so a signal that lands on any thread wakes
    the sleeping main thread at once, which then runs the handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous_fd = signal.set_wakeup_fd(waker.signal_fd, warn_on_full_buffer=False)

    def handle(signum: int, _frame: object) -> None:
        # Set the stop event from a fresh thread: locks taken inside a signal handler
        # can deadlock with the very code the handler interrupted.
        threading.Thread(target=request_stop, name=f"signal-{signum}").start()

    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"):  # SIGHUP: the terminal closed
        if hasattr(signal, name):
            signum = getattr(signal, name)
            previous[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)

    return restore


def _in_zone(moment: datetime, zone: tzinfo) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdout: IO[str] | None = None,
    workdir: Path | None = None,
) -> int:
    """Run AutoHome until it is shut down; return the process exit code.

    Every argument defaults to the process's own, so tests run a whole session in-process:
    `workdir` stands for the working directory (.env and relative folders count from it).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    stderr = sys.stderr if stderr is None else stderr
    stdout = sys.stdout if stdout is None else stdout
    workdir = Path.cwd() if workdir is None else workdir
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):  # argparse writes --help and errors there
            args = parse(build_parser(argv), argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command is not None:
        handler: Handler = args.handler
        return handler(args, Streams(stdin, stdout, stderr, environ, workdir))
    try:
        settings_given = overrides(args)

        def reread() -> Config:  # the settings as at start: .env, the environment, the options
            return load_config(environ, args.env_file, settings_given, base=workdir)

        config = reread()
        if args.no_console:
            config = config._replace(console_enabled=False)
        if args.no_web:
            config = config._replace(web_enabled=False)
        _check_folders(config, _log_name(args))
        database = config.data_dir / (TEST_DB_FILE if args.test else DB_FILE)
        lock = InstanceLock(database)
        lock.acquire()
    except (AutoHomeError, OSError) as exc:
        stderr.write(f"autohome: error: {exc}\n")
        return EXIT_USAGE
    already_there = set(blocking_threads())
    left: list[threading.Thread] = []
    try:
        return _with_lock(args, config, environ, stdin, stderr, lock, already_there, left, reread)
    finally:
        if not left:  # else held until the process really ends (entry(): no second AutoHome beside it)
            lock.release()


def entry() -> None:
    """The `autohome` command and `python main.py`: main(), then an exit that does not wait
    for threads that modules left behind (leftovers.py; main() has named them in the log)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `autohome status | head -3`: the reader has all it wanted
        _stop_writing_to(sys.stdout)
        code = EXIT_OK
    if blocking_threads() or any(thread.name == "terminal" for thread in threading.enumerate()):
        exit_now(code)  # (a terminal that does not read: Python's own exit would wait on it too)
    sys.exit(code)


def _stop_writing_to(stream: IO[str]) -> None:
    """Point a stream whose reader left at nothing, so that Python's own flush at exit does
    not say so with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # not a real descriptor: nothing will be flushed at exit


def _with_lock(args: argparse.Namespace, config: Config, environ: Mapping[str, str], stdin: IO[str],
               stderr: IO[str], lock: InstanceLock, already_there: set[threading.Thread],
               left: list[threading.Thread], reread: Callable[[], Config]) -> int:
    database = lock.database
    try:
        archived = archive_current_log(config.log_dir, _log_name(args)) if args.new else None
        channels = make_channels(config)  # a bad URL stops the start here
        db = open_database(database.parent, database.name)
    except (AutoHomeError, OSError) as exc:
        stderr.write(f"autohome: error: {exc}\n")
        return EXIT_USAGE

    terminal = _own_stream(stderr)
    capture = OutputCapture()  # what a module prints goes to its own log
    logging_setup = setup_logging(
        config.log_dir, config.log_level, terminal=terminal, colour=_wants_colour(stderr, environ),
        reopen_terminal=lambda: _own_stream(stderr),
        max_bytes=int(config.log_max_mb * 1024 * 1024), keep=config.log_keep, file_name=_log_name(args),
        module_logger=capture.current_logger,
    )
    try:
        code = EXIT_DEAF  # (should _run raise: its descriptors closed under it, say)
        code = _run(args, config, environ, stdin, stderr, db, logging_setup, archived, capture, lock, reread,
                    channels)
        left += [thread for thread in blocking_threads() if thread not in already_there]
        if left:
            log.warning("threads that modules started are still running after shutdown; AutoHome ends "
                        "without waiting for them: %s", describe(left, config.modules_dir))
        return code
    finally:
        db.close(0.5 if code else -1.0)  # its descriptors closed under it: nothing more to write
        logging_setup.close()
        if terminal is not stderr and not logging_setup.is_terminal_stuck:  # (else closing it would wait)
            try:
                terminal.close()
            except OSError:
                pass  # closed under it by a module (descriptors.py)


def _own_stream(stream: IO[str]) -> IO[str]:
    """A stream of AutoHome's own onto the same terminal or file, so that a module that closes
    sys.stderr (or replaces it) cannot silence the log. Streams without a descriptor (tests)
    are used as they are."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream
    return open(os.dup(descriptor), "w", encoding=getattr(stream, "encoding", None) or "utf-8",  # noqa: SIM115
                errors="backslashreplace", buffering=1)


def _run(args: argparse.Namespace, config: Config, environ: Mapping[str, str], stdin: IO[str],
         stderr: IO[str], db: Database, logging_setup: LogSetup, archived: Path | None,
         capture: OutputCapture, lock: InstanceLock, reread: Callable[[], Config],
         channels: list[Channel]) -> int:
    if archived is not None:
        log.info("archived the previous log as %s", archived)
    if config.env_file is not None:
        log.info("settings read from %s", config.env_file)
    if not channels:
        log.info("no notification channel configured (PUSHOVER_TOKEN and PUSHOVER_USER, or "
                 "AUTOHOME_NOTIFY_URLS): notifications are kept, and sent once one is set")
    elif config.notify_urls:
        log.info("notification channels: %s", ", ".join(channel.name for channel in channels))
    zone = (ZoneInfo(config.timezone) if config.timezone
            else system_zone(environ, get_logger("autohome.clock").warning))
    waker = Waker()
    if args.test:
        start = utc_now() if args.start is None else _in_zone(args.start, zone)
        feed = typed_lines(stdin, stderr, waker, before=logging_setup.flush)
        clock: SystemClock | VirtualClock = VirtualClock(start, feed, zone=zone)
        logging_setup.stamp_with(clock.now)
        log.info("test mode: virtual time starts at %s (state in %s); %s",
                 start.astimezone(zone).isoformat(timespec="seconds"),
                 config.data_dir / TEST_DB_FILE, TEST_MODE_HELP)
    else:
        clock = SystemClock(waker)
    crash_isolation = CrashIsolation(db)  # modules that crashed AutoHome run in a child process
    daemon = build(config, clock, None, db=db, channels=channels, logs=logging_setup, zone=zone,
                   settle_each_tick=args.test, run_clock=SystemClock(waker) if args.test else None,
                   capture=capture, send_notifications=not args.test or args.notify,
                   crash_isolation=crash_isolation, reread=reread,
                   # Test mode beside the AutoHome that runs: ports that no option fixed may move.
                   ports_may_move=(args.test and args.port is None, args.test and args.web_port is None))
    for descriptor in waker.descriptors():
        daemon.descriptors.add("the main loop's wake-up sockets", descriptor)
    daemon.descriptors.add("the instance lock", lock.descriptor)
    daemon.descriptors.add_database(db.path if isinstance(db.path, Path) else Path(db.path))
    crashes = CrashRecorder(lock.database.with_name(lock.database.name + ".crash"), config.modules_dir)
    crash = crashes.previous()
    crashes.arm()
    if crash is not None:
        report_crash(crash, db, crash_isolation, daemon.notifier.alert, zone, config.modules_dir)
        logging_setup.flush()  # out before any module runs: it may crash the process again
    restore_signals = _install_signal_handlers(daemon.request_stop, waker)
    capture.install()
    # Everything built so far lives as long as the daemon: keep the cyclic garbage
    # collector from walking it again and again while AutoHome idles.
    gc.freeze()
    try:
        daemon.run(crash_reported=crash is not None)
    finally:
        gc.unfreeze()
        capture.uninstall()
        restore_signals()
        waker.close()
    crashes.disarm()  # stopped, not crashed
    if not daemon.stop.exit_code:
        end_streak(db)
    return daemon.stop.exit_code

