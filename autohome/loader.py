"""Finding and importing user modules: `modules/<name>.py` with INTERVAL and run(log, notify)."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from autohome.durations import parse_duration

log = logging.getLogger(__name__)

MODULE_CONTRACT = 'define INTERVAL (e.g. 300 or "5m") and def run(log, notify)'


@dataclass(frozen=True)
class ModuleSpec:
    """A user module that loaded: what to run and how often."""

    name: str
    path: Path
    interval: timedelta
    run: Callable[..., Any]
    description: str = ""

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.splitlines()[0] if self.description else ""


@dataclass(frozen=True)
class BrokenModule:
    """A module file that could not be used, and why."""

    name: str
    path: Path
    reason: str


class ModuleLoadError(Exception):
    """A module file is unusable; the message says why and how to fix it."""


def module_files(folder: Path) -> list[Path]:
    """The module files in the folder, sorted; `_private.py` files are skipped."""
    return sorted(
        path
        for path in folder.glob("*.py")
        if path.is_file() and not path.name.startswith("_")
    )


def load_module(path: Path) -> ModuleSpec:
    """Import one module file and check its contract; raise ModuleLoadError if it breaks it."""
    name = path.stem
    import_name = f"autohome_modules.{name}"
    spec = importlib.util.spec_from_file_location(import_name, path)
    if spec is None or spec.loader is None:
        raise ModuleLoadError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[import_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(import_name, None)
        raise ModuleLoadError(f"import failed{_where(exc, path)}: {type(exc).__name__}: {exc}") from exc

    if not hasattr(module, "INTERVAL"):
        raise ModuleLoadError(f"INTERVAL is missing: {MODULE_CONTRACT}")
    try:
        interval = parse_duration(module.INTERVAL)
    except ValueError as exc:
        raise ModuleLoadError(f"INTERVAL {exc}") from None

    run = getattr(module, "run", None)
    if not callable(run):
        raise ModuleLoadError(f"run is missing or not a function: {MODULE_CONTRACT}")
    try:
        inspect.signature(run).bind("log", "notify")
    except TypeError:
        raise ModuleLoadError("run must accept two arguments: def run(log, notify)") from None
    except ValueError:
        pass  # builtins without a signature: let them try

    description = inspect.cleandoc(module.__doc__) if module.__doc__ else ""
    return ModuleSpec(name=name, path=path, interval=interval, run=run, description=description)


def _where(exc: BaseException, path: Path) -> str:
    """' at line N' for the deepest frame of the traceback inside the module file."""
    if isinstance(exc, SyntaxError):
        return ""  # its message already names the line
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if Path(frame.filename) == path]
    return f" at line {lines[-1]}" if lines else ""


def discover_modules(folder: Path) -> list[ModuleSpec | BrokenModule]:
    """Load every module in the folder; a broken one is logged and returned as BrokenModule."""
    found: list[ModuleSpec | BrokenModule] = []
    for path in module_files(folder):
        try:
            found.append(load_module(path))
        except ModuleLoadError as exc:
            log.error("module %s is broken and will not run: %s (fix %s)", path.stem, exc, path)
            found.append(BrokenModule(name=path.stem, path=path, reason=str(exc)))
    loaded = sum(isinstance(item, ModuleSpec) for item in found)
    log.info("loaded %d module(s) from %s, %d broken", loaded, folder, len(found) - loaded)
    return found
