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
from importlib.machinery import ModuleSpec as ModuleSpecType
from pathlib import Path
from typing import Any, NamedTuple

from autohome.catalog.schedule import (
    IntervalSchedule,
    Schedule,
    WindowedSchedule,
    parse_at,
    parse_between,
    parse_cron,
)
from autohome.clock import utc_now
from autohome.durations import parse_duration, parse_size
from autohome.logs.tree import get_logger

log = get_logger("autohome.loader")

MODULE_CONTRACT = 'define INTERVAL (e.g. "5m"), AT (e.g. "08:00") or CRON, and def run(log, notify)'
SCHEDULE_NAMES = ("INTERVAL", "AT", "CRON")


class ModuleKit(NamedTuple):
    """What run() can ask for, each by its parameter's name: the one list of those names."""

    log: logging.Logger
    notify: Callable[..., bool]
    store: Any
    config: Mapping[str, str]


GIVEN = ModuleKit._fields


class AlertRule(NamedTuple):
    """A module's alert settings: ALERT_AFTER, ALERT ("never"), ALERT_PRIORITY."""

    after: int = 1
    never: bool = False
    priority: int = 0


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
    isolate: bool | None = None  # ISOLATE: run in a child process (None: AUTOHOME_ISOLATION)
    retries: int = 0  # RETRIES: how many times a failed run is tried again
    retry_delay: timedelta = timedelta(minutes=1)  # RETRY_DELAY: before the first retry, then doubling
    jitter: timedelta | None = None  # JITTER: each scheduled run starts up to this much later
    memory: int | None = None  # MEMORY: bytes an isolated run may take (an rlimit in its child)
    needs: tuple[str, ...] = ()  # NEEDS: "network", "power": a run waits until they hold
    missed: str | timedelta = "once"  # MISSED: "once", "skip", or how late a catch-up may be
    ping_url: str = ""  # PING_URL: a Healthchecks check pinged at each run's start and end
    alert: AlertRule = AlertRule()  # ALERT_AFTER, ALERT, ALERT_PRIORITY: when a failure is worth an alert

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


_MISSING = object()
NEVER_AFTER = timedelta(days=3650)  # a schedule with no run in ten years never runs


def _attribute(module: Any, name: str) -> Any:
    """The module's attribute, or _MISSING; a module-level __getattr__ that raises makes the
    module broken, not the loader."""
    try:
        return getattr(module, name, _MISSING)
    except Exception as exc:  # noqa: BLE001 - user code: reported with the name it failed on
        raise ModuleLoadError(f"reading {name} raised {type(exc).__name__}: {exc}") from None


def _schedule(module: Any, zone: tzinfo) -> Schedule:
    values = {name: _attribute(module, name) for name in SCHEDULE_NAMES}
    given = [name for name, value in values.items() if value is not _MISSING]
    if not given:
        raise ModuleLoadError(f"INTERVAL is missing: {MODULE_CONTRACT}")
    if len(given) > 1:
        raise ModuleLoadError(f"{' and '.join(given)} are both set: define exactly one schedule")
    value = values[given[0]]
    try:
        if given[0] == "AT":
            schedule: Schedule = parse_at(value, zone)
        elif given[0] == "CRON":
            schedule = parse_cron(value, zone)
        else:
            schedule = IntervalSchedule(parse_duration(value))
    except ValueError as exc:
        raise ModuleLoadError(f"{given[0]} {exc}") from None
    between = _attribute(module, "BETWEEN")
    if between is not _MISSING:
        try:
            schedule = WindowedSchedule(schedule, parse_between(between), zone)
        except ValueError as exc:
            raise ModuleLoadError(f"BETWEEN {exc}") from None
    _check_comes_round(given[0], value, schedule)
    return schedule


def _check_comes_round(name: str, value: object, schedule: Schedule) -> None:
    """A schedule whose first and second runs are not both within ten years never runs."""
    now = utc_now()
    try:
        first = schedule.next_run(None, now)
        second = schedule.next_run(first, now)
        comes_round = second - now <= NEVER_AFTER
    except Exception:  # noqa: BLE001 - croniter and datetime overflow: the schedule never comes
        comes_round = False
    if not comes_round:
        raise ModuleLoadError(f"{name} = {value!r} never comes round: it has no run in the next ten "
                              "years (check the day and month)")


def _duration(module: Any, name: str, default: timedelta | None) -> timedelta | None:
    value = _attribute(module, name)
    if value is _MISSING:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ModuleLoadError(f"{name} {exc}") from None


def _size(module: Any, name: str) -> int | None:
    value = _attribute(module, name)
    if value is _MISSING:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ModuleLoadError(f"{name} {exc}") from None


def say_memory(spec: ModuleSpec, isolated: bool) -> None:
    """A module's MEMORY is an rlimit in its child process: say so where it cannot hold."""
    if spec.memory and (not isolated or sys.platform == "win32"):
        log.warning("module %s: MEMORY cannot be held %s; it is not enforced", spec.name,
                    "on Windows" if isolated else "in a thread (set ISOLATE = True to have it enforced)")


def _options(module: Any) -> dict[str, Any]:
    """ISOLATE, RETRIES, RETRY_DELAY and JITTER, checked."""
    isolate = _attribute(module, "ISOLATE")
    if isolate is not _MISSING and not isinstance(isolate, bool):
        raise ModuleLoadError(f"ISOLATE = {isolate!r} is not allowed: use True or False")
    retries = _attribute(module, "RETRIES")
    if retries is _MISSING:
        retries = 0
    elif isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise ModuleLoadError(f"RETRIES = {retries!r} is not allowed: use a whole number from 0 to 100")
    return {
        "isolate": None if isolate is _MISSING else isolate,
        "retries": retries,
        "retry_delay": _duration(module, "RETRY_DELAY", timedelta(minutes=1)),
        "jitter": _duration(module, "JITTER", None),
        "memory": _size(module, "MEMORY"),
        "needs": _needs(module),
        "missed": _missed(module),
        "ping_url": _ping_url(module),
        "alert": _alert(module),
    }


NEEDS_KINDS = ("network", "power")


def _needs(module: Any) -> tuple[str, ...]:
    value = _attribute(module, "NEEDS")
    if value is _MISSING:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or any(item not in NEEDS_KINDS for item in items):
        raise ModuleLoadError(f'NEEDS = {value!r} is not allowed: use NEEDS = ["network"], ["power"] '
                              'or ["network", "power"]')
    return tuple(dict.fromkeys(items))


def _missed(module: Any) -> str | timedelta:
    value = _attribute(module, "MISSED")
    if value is _MISSING or value == "once":
        return "once"
    if value == "skip":
        return "skip"
    try:
        return parse_duration(value)
    except ValueError:
        raise ModuleLoadError(f'MISSED = {value!r} is not allowed: use "once" (catch up once, the '
                              'default), "skip" (wait for the next run), or how late a catch-up may '
                              'be, such as "2h"') from None


def _ping_url(module: Any) -> str:
    value = _attribute(module, "PING_URL")
    if value is _MISSING:
        return ""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ModuleLoadError(f"PING_URL = {value!r} is not allowed: use the check's ping URL, such as "
                              '"https://hc-ping.com/<uuid>"')
    return value.rstrip("/")


def _alert(module: Any) -> AlertRule:
    after, never, priority = (_attribute(module, name) for name in ("ALERT_AFTER", "ALERT", "ALERT_PRIORITY"))
    if after is _MISSING:
        after = 1
    elif isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= 1000:
        raise ModuleLoadError(f"ALERT_AFTER = {after!r} is not allowed: use how many failed runs in a row "
                              "make an alert, a whole number from 1 (the default) to 1000")
    if never not in (_MISSING, "never", "always"):
        raise ModuleLoadError(f'ALERT = {never!r} is not allowed: use "never" to silence the module\'s '
                              'alerts, or "always" (the default)')
    if priority is _MISSING:
        priority = 0
    elif isinstance(priority, bool) or not isinstance(priority, int) or priority not in (-2, -1, 0, 1, 2):
        raise ModuleLoadError(f"ALERT_PRIORITY = {priority!r} is not allowed: use -2, -1, 0 (the default), "
                              "1 (high) or 2 (an emergency, repeated until acknowledged)")
    return AlertRule(after, never == "never", priority)


def _description(module: Any) -> str:
    import inspect

    doc = _attribute(module, "__doc__")
    if doc is None or doc is _MISSING:
        return ""
    if not isinstance(doc, str):
        raise ModuleLoadError(f"__doc__ = {doc!r} is not text: give the module a docstring, or none")
    return inspect.cleandoc(doc)


def _wants(run: Callable[..., Any]) -> tuple[str, ...]:
    """What to hand run(): each parameter by its name, in the order declared. A lone `*args`
    takes log and notify; a parameter with a default that AutoHome does not know keeps it."""
    import inspect  # after the console listens: see docs/performance.md, "Imports"

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
    value = _attribute(module, "REQUIRES")
    if value is _MISSING:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ModuleLoadError('REQUIRES must name settings, such as REQUIRES = ["AUTOHOME_WATCH_URLS"]')
    return tuple(items)


class HelperFinder:
    """Finds `import _helpers` in the modules folder, and nothing else there. The folder is
    never put on sys.path, so a module file named like one of Python's own (`inspect.py`,
    `secrets.py`) hides nothing from AutoHome or from other modules. It comes last on
    sys.meta_path: a helper can never hide Python's own modules either."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpecType | None:
        """A spec for a top-level `_name` found in the folder, as `_name.py` or `_name/`."""
        import importlib.util

        if path is not None or not name.startswith("_"):
            return None
        package = self.folder / name / "__init__.py"
        if package.is_file():
            return importlib.util.spec_from_file_location(name, package,
                                                          submodule_search_locations=[str(package.parent)])
        file = self.folder / f"{name}.py"
        return importlib.util.spec_from_file_location(name, file) if file.is_file() else None


def use_helpers(folder: Path) -> None:
    """Let modules `import _name` from `folder` (once per folder and process)."""
    folder = folder.resolve()
    if not any(isinstance(finder, HelperFinder) and finder.folder == folder for finder in sys.meta_path):
        sys.meta_path.append(HelperFinder(folder))


def load_module(path: Path, zone: tzinfo = timezone.utc) -> ModuleSpec:
    """Import one module file and check its contract; raise ModuleLoadError if it breaks it."""
    import importlib.util

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
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is reported, Ctrl-C included
        if previous is None:
            sys.modules.pop(import_name, None)
        else:
            sys.modules[import_name] = previous
        raise ModuleLoadError(f"import failed{_where(exc, path)}: {type(exc).__name__}: {exc}") from exc

    schedule = _schedule(module, zone)
    run = _attribute(module, "run")
    if not callable(run):
        raise ModuleLoadError(f"run is missing or not a function: {MODULE_CONTRACT}")
    return ModuleSpec(name, path, schedule, run, _description(module), _duration(module, "TIMEOUT", None),
                      _wants(run), _requires(module), **_options(module))
