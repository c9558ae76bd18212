"""Module files and specs made by tests, and the daemon built over them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from autohome.app import Main, build
from autohome.catalog.loader import BrokenModule, ModuleSpec
from autohome.catalog.registry import ModuleRegistry
from autohome.catalog.schedule import IntervalSchedule
from autohome.config import Config
from autohome.logs.setup import LogSetup
from support.clock import WAIT_S, FakeClock

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "modules"


def loaded_registry(folder: Path) -> ModuleRegistry:
    """Every module file of `folder` loaded, as the daemon's first load does."""
    registry = ModuleRegistry(folder)
    registry.load()
    return registry


def write_module(folder: Path, name: str, source: str) -> Path:
    """Write a user module file from an indented source string."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def spec(name: str, run: Callable[..., object], interval_s: float = 60, description: str = "",
         **changes: object) -> ModuleSpec:
    """A module made in the test, without a file."""
    schedule = IntervalSchedule(timedelta(seconds=interval_s))
    return ModuleSpec(name, Path(f"modules/{name}.py"), schedule, run, description, **changes)  # type: ignore[arg-type]


def make_main(clock: FakeClock, *modules: ModuleSpec | BrokenModule, max_threads: int = 8,
              grace_s: float = 5, settle: bool = False, **settings: object) -> Main:
    """The daemon as build() wires it, console off unless asked for, on an in-memory database."""
    config = Config(**{"max_threads": max_threads, "console_enabled": False, "web_enabled": False,
                       "shutdown_grace": timedelta(seconds=grace_s), **settings})  # type: ignore[arg-type]
    return build(config, clock, list(modules), settle_each_tick=settle)


def settle(main: Main, logs: LogSetup | None = None) -> None:
    """Wait until no run is going or waiting, and every finished one is stored (and logged)."""
    assert main.runner.wait_for(lambda now: not now.running and not now.queued, WAIT_S)
    main.states.flush()
    if logs is not None:
        logs.flush()


def sunny(log, notify):
    log.info("sunny")


def no_network(log, notify):
    raise RuntimeError("no network <b>today</b>")


def scripted(log, notify):
    log.info("<script>alert(1)</script>")
