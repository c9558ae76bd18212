"""`autohome check` and `autohome new NAME`: the commands for writing modules, no daemon needed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from autohome.arguments import EXIT_USAGE, Parser
from autohome.clock import system_zone, utc_now
from autohome.config import load_config
from autohome.errors import AutoHomeError
from autohome.registry import ModuleRegistry
from autohome.scheduler import why_off

NEXT_RUNS = 5
_NAME = r"^[a-z][a-z0-9_]*$"
TEMPLATE = '''"""{description}"""

# How often it runs: INTERVAL = "5m", AT = "08:00" (or a list of times), or CRON = "*/15 * * * *".
{schedule}


def run(log, notify):
    """Called on the schedule above. To fail, raise: the traceback goes to the log."""
    log.info("{name} ran")
    # notify("something happened", title="{name}")  # a Pushover message to your phone
'''


def check_main(argv: Sequence[str], environ: Mapping[str, str], out: IO[str], workdir: Path) -> int:
    """Load every module as the daemon would, run none; exit 1 if any is broken."""
    parser = Parser(prog="autohome check", description="Load every module as AutoHome would, "
                    "without running any: state, schedule and the next five runs of each.")
    parser.add_argument("--env-file", metavar="FILE", type=Path, help="read settings from FILE")
    args = parser.parse_args(argv)
    try:
        config = load_config(environ, args.env_file, base=workdir)
    except AutoHomeError as exc:
        out.write(f"autohome check: error: {exc}\n")
        return EXIT_USAGE
    zone = ZoneInfo(config.timezone) if config.timezone else system_zone(environ)
    registry = ModuleRegistry(config.modules_dir, zone,
                              import_timeout_s=config.import_timeout.total_seconds())
    registry.refresh()
    now, broken = utc_now(), 0
    for entry in registry.entries():
        spec = entry.spec
        if spec is None:
            broken += 1
            out.write(f"{entry.name}: broken: {entry.problem} ({entry.path})\n")
            continue
        off = why_off(spec, config.settings)
        out.write(f"{entry.name}: {off or 'ok'}, {spec.schedule.describe()}\n")
        if off:
            continue
        moment = None
        for _ in range(NEXT_RUNS):
            moment = spec.schedule.next_run(moment, now)
            out.write(f"  {moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}\n")
    if not registry.entries():
        out.write(f"no modules in {config.modules_dir}\n")
    return 1 if broken else 0


def new_main(argv: Sequence[str], environ: Mapping[str, str], out: IO[str], workdir: Path) -> int:
    """Write modules/NAME.py from a short template that passes `autohome check`."""
    parser = Parser(prog="autohome new", description="Write a new module from a template.")
    parser.add_argument("name", help="the module's name: lower case letters, digits and _")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="DURATION", help='run every DURATION, such as "5m" (default)')
    when.add_argument("--at", metavar="HH:MM", help='run daily at that time, such as "08:00"')
    when.add_argument("--cron", metavar="EXPR", help='run when a cron expression says, "*/15 * * * *"')
    args = parser.parse_args(argv)
    if not re.match(_NAME, args.name):
        out.write(f"autohome new: error: {args.name!r} is not a module name: use lower case letters, "
                  "digits and _, starting with a letter\n")
        return EXIT_USAGE
    try:
        config = load_config(environ, None, base=workdir)
    except AutoHomeError as exc:
        out.write(f"autohome new: error: {exc}\n")
        return EXIT_USAGE
    path = config.modules_dir / f"{args.name}.py"
    if path.exists():
        out.write(f"autohome new: error: {path} exists already; pick another name or edit it\n")
        return EXIT_USAGE
    schedule = (f"AT = {args.at!r}" if args.at else f"CRON = {args.cron!r}" if args.cron
                else f"INTERVAL = {args.every or '5m'!r}")
    config.modules_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(description=f"What {args.name} does, in one line.",
                                    schedule=schedule, name=args.name), encoding="utf-8")
    out.write(f"wrote {path}; `autohome check` shows when it will run\n")
    return 0
