"""The fixtures: real objects built fresh for each test (a clock, daemons, a console, the
log set-up, a Pushover-like server). What they are made of is in tests/support/."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, FakeClock
from support.logs import ToCaplog
from support.modules import no_network, scripted, spec, sunny
from support.processes import Daemon, InProcessDaemon, started
from support.pushover import FakePushover

from autohome.app import Main, build
from autohome.catalog.loader import BrokenModule, ModuleSpec
from autohome.config import Config
from autohome.logs.setup import LogSetup, setup_logging
from autohome.logs.tree import get_logger


@pytest.fixture(autouse=True)
def _caplog_sees_autohome(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that asks for caplog sees AutoHome's lines, as it would the logging module's."""
    if "caplog" not in request.fixturenames:
        yield
        return
    bridge = ToCaplog(request.getfixturevalue("caplog"))
    root = get_logger("autohome").parent  # the root of AutoHome's own logger tree
    assert root is not None
    level = root.level
    root.setLevel(logging.DEBUG)  # caplog's handler has the level (caplog.at_level sets it)
    root.addHandler(bridge)
    try:
        yield
    finally:
        root.removeHandler(bridge)
        root.setLevel(level)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def daemon_factory() -> Iterator[Callable[..., InProcessDaemon]]:
    """Start `main.py ARGS` in-process on a thread; stopped at the end of the test."""
    yield from started(InProcessDaemon)


@pytest.fixture
def process_factory() -> Iterator[Callable[..., Daemon]]:
    """Start `python main.py ARGS` as a real process (signals, kill -9); killed at the end."""
    yield from started(Daemon)


@pytest.fixture
def console_factory(clock: FakeClock) -> Iterator[Callable[..., Main]]:
    """Start daemons with a real console on a free port; shut down at the end of the test."""
    started: list[Main] = []

    def start(*modules: ModuleSpec | BrokenModule, logs: LogSetup | None = None,
              limits: dict[str, float] | None = None, **settings: object) -> Main:
        config = Config(**{"console_port": 0, "tick": timedelta(seconds=30), "web_enabled": False,  # type: ignore[arg-type]
                           **settings})
        main = build(config, clock, list(modules), logs=logs)
        if limits and main.console is not None:
            main.console.limits = main.console.limits._replace(**limits)
        main.start()
        started.append(main)
        return main

    yield start
    for main in started:
        main.shutdown()


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogSetup]:
    """AutoHome's logging, as the daemon sets it up, into the test's own logs/ folder."""
    setup = setup_logging(tmp_path / "logs", "DEBUG")
    yield setup
    setup.close()


@pytest.fixture
def web_main(console_factory: Callable[..., Main], logs: LogSetup) -> Main:
    """A daemon with its console and status page on free ports: a module that works, one that
    fails, and one whose log line is a script."""
    return console_factory(spec("weather", sunny, 300, "Fetch the weather."),
                           spec("failing", no_network, 3600), spec("scripted", scripted, 3600),
                           logs=logs, web_enabled=True, web_port=0)


@pytest.fixture
def pushover() -> Iterator[FakePushover]:
    server = FakePushover()
    yield server
    server.close()
