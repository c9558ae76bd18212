"""`autohome check`, `autohome new NAME` and `autohome run NAME`: the commands for writing and
trying modules; none needs the daemon."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from autohome.catalog.loader import ModuleKit, ModuleLoadError, load_module, use_helpers
from autohome.catalog.registry import ModuleRegistry
from autohome.cli.command import Streams
from autohome.clock import system_zone, utc_now
from autohome.config import Config, load_config
from autohome.control.views import ModuleState, cadence, module_state, nearest, outcome_text, upcoming_runs
from autohome.errors import AutoHomeError, ConfigError, NotifyError
from autohome.logs.setup import MODULE_LOGGER, LineFormatter
from autohome.logs.tree import get_logger
from autohome.notifications.channels import make_channels
from autohome.notifications.notifier import pick_channels, read_attachment
from autohome.notifications.pushover import NOT_CONFIGURED, build_message
from autohome.running.capture import OutputCapture, RunOutput
from autohome.running.dispatch import why_off
from autohome.storage.db import DB_FILE, open_database
from autohome.storage.state import UNKNOWN, remembered
from autohome.storage.store import ModuleStore
from autohome.text import escape_controls

NEXT_RUNS = 5
_NAME = r"^[a-z][a-z0-9_]*$"
TEMPLATE = '''"""{description}"""

# How often it runs: INTERVAL = "5m", AT = "08:00" (or a list of times), or CRON = "*/15 * * * *".
{schedule}


def run(log, notify):
    """Called on the schedule above. To fail, raise: the traceback goes to the log."""
    log.info("{name} ran")
    # notify("something happened", title="{name}")  # a Pushover message to your phone


# run() gets what its parameters name, in any order: log, notify, and also
#   store   values kept across runs and restarts: store.get("seen", 0), store.set("seen", 3)
#   config  the settings of .env and the environment: config.get("MY_URL", "")
# such as def run(log, notify, store, config). `autohome run {name}` tries it now.
'''


def check_modules(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome check`: load every module as the daemon would, run none; exit 1 if any is broken."""
    environ, out = streams.environ, streams.stdout
    try:
        config = load_config(environ, getattr(args, "env_file", None), base=streams.workdir)
    except AutoHomeError as exc:
        return streams.fail("check", str(exc))
    zone = (ZoneInfo(config.timezone) if config.timezone
            else system_zone(environ, get_logger("autohome.clock").warning))
    registry = ModuleRegistry(config.modules_dir, zone,
                              import_timeout_s=config.import_timeout.total_seconds())
    registry.refresh(registry.import_timeout_s)
    # What the daemon remembers (last runs, pauses): the next runs are the daemon's.
    statuses = remembered(config.data_dir / DB_FILE)
    now, broken = utc_now(), 0
    for entry in registry.entries():
        spec = entry.spec
        if spec is None:
            broken += 1
            out.write(escape_controls(f"{entry.name}: broken: {entry.problem} ({entry.path})\n"))
            continue
        status = statuses.get(entry.name, UNKNOWN)
        off = why_off(spec, config.settings)
        state = module_state(status, off=off)
        said = {ModuleState.IDLE: "ok", ModuleState.OFF: off,
                ModuleState.PAUSED: f"paused (the console's `modules start {entry.name}` resumes it)",
                ModuleState.FAILING: f"failing: {outcome_text(status.last_run)}" if status.last_run else "",
                }.get(state, str(state))
        out.write(escape_controls(f"{entry.name}: {said}, {cadence(spec.schedule, config.tick)}\n"))
        if state in (ModuleState.OFF, ModuleState.PAUSED):
            continue
        for moment in upcoming_runs(spec.schedule, status, now, config.tick, zone, NEXT_RUNS):
            out.write(f"  {moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}\n")
    if not registry.entries():
        out.write(f"no modules in {config.modules_dir}\n")
    return 1 if broken else 0


def new_module(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome new NAME`: write modules/NAME.py from a short template that passes `autohome check`."""
    if not re.match(_NAME, args.name):
        return streams.fail("new", f"{args.name!r} is not a module name: use lower case letters, "
                            "digits and _, starting with a letter")
    try:
        config = load_config(streams.environ, getattr(args, "env_file", None), base=streams.workdir)
    except AutoHomeError as exc:
        return streams.fail("new", str(exc))
    path = config.modules_dir / f"{args.name}.py"
    if path.exists():
        return streams.fail("new", f"{path} exists already; pick another name or edit it")
    schedule = (f"AT = {args.at!r}" if args.at else f"CRON = {args.cron!r}" if args.cron
                else f"INTERVAL = {args.every or '5m'!r}")
    config.modules_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(description=f"What {args.name} does, in one line.",
                                    schedule=schedule, name=args.name), encoding="utf-8")
    streams.stdout.write(f"wrote {path}; `autohome check` shows when it will run\n")
    return 0


def run_module(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome run NAME`: run one module once, now, in the foreground: its lines and output
    on the terminal; exit 1 if the run fails."""
    out = streams.stdout
    try:
        config = load_config(streams.environ, getattr(args, "env_file", None), base=streams.workdir)
    except AutoHomeError as exc:
        return streams.fail("run", str(exc))
    path = config.modules_dir / f"{args.name}.py"
    if not path.is_file():
        names = [file.stem for file in config.modules_dir.glob("*.py") if not file.name.startswith("_")]
        return streams.fail("run", escape_controls(
            f"no module named {args.name!r} in {config.modules_dir}{nearest(args.name, names)}; "
            "`autohome check` lists them"))
    try:
        use_helpers(config.modules_dir)
        spec = load_module(path)
    except (ModuleLoadError, OSError) as exc:
        return streams.fail("run", escape_controls(f"{args.name} is broken: {exc} (fix {path})"))
    off = why_off(spec, config.settings)
    if off:
        return streams.fail("run", f"{args.name} is {off}")
    try:
        db = open_database(config.data_dir)
    except (AutoHomeError, OSError) as exc:
        return streams.fail("run", str(exc))
    log = get_logger(f"{MODULE_LOGGER}.{spec.name}")
    handler = logging.StreamHandler(out)
    handler.setFormatter(LineFormatter())  # control characters shown escaped (text.py)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    capture, output = OutputCapture(), RunOutput(log)  # what it prints: its `out:` lines, as in the daemon
    capture.install()
    capture.begin(output)
    try:
        kit = ModuleKit(log, _notify_for(config, log, args.send), ModuleStore(db, spec.name),
                        config.settings)
        try:
            spec.run(*[getattr(kit, wanted) for wanted in spec.wants])
        except BaseException:  # noqa: BLE001 - the module's failure is this command's exit code
            capture.end(output)
            log.exception("run failed")
            return 1
        capture.end(output)
        log.info("run finished")
        return 0
    finally:
        capture.end(output)
        capture.uninstall()
        log.removeHandler(handler)
        db.close()


def _notify_for(config: Config, log: logging.Logger, send: bool) -> Callable[..., bool]:
    """A notify that shows the message, or, with --notify, sends it at once to each channel
    (Pushover and AUTOHOME_NOTIFY_URLS, or those `to` names), its attachment too."""

    def notify(message: object, to: str | list[str] | None = None,
               attachment: str | Path | bytes | None = None, **fields: object) -> bool:
        try:
            checked = build_message(message, **fields)  # type: ignore[arg-type]
            image = None if attachment is None else read_attachment(attachment)
        except (TypeError, ValueError, OSError) as exc:
            log.error("notification not sent, the message is invalid: %s", exc)
            return False
        if not send:
            log.info("notification (not sent: run with --notify to send it): %s", checked.message)
            return True
        try:
            channels = make_channels(config)
        except ConfigError as exc:
            log.error("notification not sent: %s", exc)
            return False
        if not channels:
            log.info("notification (not sent: %s): %s", NOT_CONFIGURED, checked.message)
            return True
        try:
            names = pick_channels(to, [channel.name for channel in channels])
        except ValueError as exc:
            log.error("notification not sent: %s", exc)
            return False
        delivered = True
        for channel in channels:
            if names is not None and channel.name not in names:
                continue
            if dropped := channel.cannot_carry(checked, image):
                log.info("notification goes to %s without %s: the channel cannot carry it", channel.name,
                         ", ".join(dropped))
            try:
                channel.send(checked, image)
            except NotifyError as exc:
                log.error("notification not sent to %s: %s", channel.name, exc)
                delivered = False
            else:
                log.info("notification sent to %s: %s", channel.name, checked.message)
        return delivered

    return notify
