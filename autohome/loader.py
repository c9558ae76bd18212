"""Importing one user module file (`modules/<name>.py`) and checking its contract.

A module defines one schedule (INTERVAL, AT or CRON) and run(), whose parameters name
what it is handed (ModuleKit: log, notify, store, config).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, NamedTuple

from autohome.durations import parse_duration
from autohome.schedule import IntervalSchedule, Schedule, parse_at, parse_cron

log = logging.getLogger(__name__)

MODULE_CONTRACT = 'define INTERVAL (e.g. "5m"), AT (e.g. "08:00") or CRON, and def run(log, notify)'
SCHEDULE_NAMES = ("INTERVAL", "AT", "CRON")


class ModuleKit(NamedTuple):
    """What run() can ask for, each by its parameter's name: the one list of those names."""

    log: logging.Logger
    notify: Callable[..., bool]
    store: Any
    config: Mapping[str, str]


GIVEN = ModuleKit._fields


class ModuleSpec(NamedTuple):
    """A user module that loaded: what to run and when."""

    name: str
    path: Path
    schedule: Schedule
    run: Callable[..., Any]
    description: str = ""
    timeout: timedelta | None = None  # None: AUTOHOME_MODULE_TIMEOUT
    wants: tuple[str, ...] = ("log", "notify")  # what run() is handed, in order
    requires: tuple[str, ...] = ()  # settings that must be set for the module to run

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""


class BrokenModule(NamedTuple):
    """A module file that could not be used, and why."""

    name: str
    path: Path
    reason: str


class ModuleLoadError(Exception):
    """A module file is unusable; the message says why and how to fix it."""


def _where(exc: BaseException, path: Path) -> str:
    """' at line N' for the deepest frame of the traceback inside the module file."""
    if isinstance(exc, SyntaxError):
        return ""  # its message already names the line
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if Path(frame.filename) == path]
    return f" at line {lines[-1]}" if lines else ""


def _schedule(module: Any, zone: tzinfo) -> Schedule:
    given = [name for name in SCHEDULE_NAMES if hasattr(module, name)]
    if not given:
        raise ModuleLoadError(f"INTERVAL is missing: {MODULE_CONTRACT}")
    if len(given) > 1:
        raise ModuleLoadError(f"{' and '.join(given)} are both set: define exactly one schedule")
    try:
        if given[0] == "AT":
            return parse_at(module.AT, zone)
        if given[0] == "CRON":
            return parse_cron(module.CRON, zone)
        return IntervalSchedule(parse_duration(module.INTERVAL))
    except ValueError as exc:
        raise ModuleLoadError(f"{given[0]} {exc}") from None


def _wants(run: Callable[..., Any]) -> tuple[str, ...]:
    """What to hand run(): each parameter by its name, in the order declared. A lone `*args`
    takes log and notify; a parameter with a default that AutoHome does not know keeps it."""
    import inspect  # with importlib.util, a fifth of start-up: the console answers before either

    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        signature = inspect.signature(run)
    except ValueError:
        return ("log", "notify")  # builtins without a signature: let them try
    wants: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            if not wants:
                return ("log", "notify")
        elif parameter.name in GIVEN and parameter.kind in positional:
            wants.append(parameter.name)
        elif parameter.default is inspect.Parameter.empty and parameter.kind is not parameter.VAR_KEYWORD:
            raise ModuleLoadError(
                f"run's parameter {parameter.name!r} is not something AutoHome hands over: name "
                f"run's parameters after what it needs, from {', '.join(GIVEN)} (def run(log, notify))")
    return tuple(wants)


def _requires(module: Any) -> tuple[str, ...]:
    value = getattr(module, "REQUIRES", ())
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ModuleLoadError('REQUIRES must name settings, such as REQUIRES = ["AUTOHOME_WATCH_URLS"]')
    return tuple(items)


def load_module(path: Path, zone: tzinfo = timezone.utc) -> ModuleSpec:
    """Import one module file and check its contract; raise ModuleLoadError if it breaks it."""
    import importlib.util
    import inspect

    name = path.stem
    import_name = f"autohome_modules.{name}"
    spec = importlib.util.spec_from_file_location(import_name, path)
    if spec is None or spec.loader is None:
        raise ModuleLoadError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(import_name)
    sys.modules[import_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of user code is reported
        if previous is None:
            sys.modules.pop(import_name, None)
        else:
            sys.modules[import_name] = previous
        raise ModuleLoadError(f"import failed{_where(exc, path)}: {type(exc).__name__}: {exc}") from exc

    schedule = _schedule(module, zone)
    run = getattr(module, "run", None)
    if not callable(run):
        raise ModuleLoadError(f"run is missing or not a function: {MODULE_CONTRACT}")
    wants = _wants(run)
    timeout = None
    if hasattr(module, "TIMEOUT"):
        try:
            timeout = parse_duration(module.TIMEOUT)
        except ValueError as exc:
            raise ModuleLoadError(f"TIMEOUT {exc}") from None
    description = inspect.cleandoc(module.__doc__) if module.__doc__ else ""
    return ModuleSpec(name, path, schedule, run, description, timeout, wants, _requires(module))
