"""Runs that wait for the network or mains power: skipped while they are not there (an outcome
of its own, no alert), due again at the next tick; by hand, refused unless forced."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.console import ConsoleClient, console_port
from support.modules import spec

from autohome.app import Main, build
from autohome.config import Config
from autohome.control.commands import Commands
from autohome.running.conditions import Machine


class Network:
    """The network probe: a loopback listener the test opens and closes."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.address = probe.getsockname()

    def up(self) -> None:
        self._sock = socket.create_server(self.address)

    def down(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@pytest.fixture
def network() -> Iterator[Network]:
    net = Network()
    yield net
    net.down()


class Power:
    """Mains power as the test says."""

    def __init__(self) -> None:
        self.on_mains = True

    def __call__(self) -> bool:
        return self.on_mains


def daemon(clock: FakeClock, network: Network, power: Power, *modules: object, **settings: object) -> Main:
    config = Config(**{"web_enabled": False, "console_port": 0, **settings})  # type: ignore[arg-type]
    return build(config, clock, list(modules), machine=Machine(network.address, power))  # type: ignore[arg-type]


def settled(main: Main) -> None:
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    main.states.flush()


def test_a_module_that_needs_the_network_is_skipped_offline_and_runs_at_the_next_tick_online(
        network: Network) -> None:
    clock, ran = FakeClock(T0), []
    main = daemon(clock, network, Power(),
                  spec("watch", lambda log, notify: ran.append("watch"), interval_s=3600, needs=("network",)),
                  spec("local", lambda log, notify: ran.append("local"), interval_s=3600))
    main.tick(T0)  # offline: the probe answers nothing
    settled(main)
    assert ran == ["local"]
    main.tick(T0 + timedelta(seconds=30))  # still offline: not recorded again
    settled(main)
    network.up()
    main.tick(T0 + timedelta(seconds=60))  # due again at once, not an hour later
    settled(main)
    assert ran == ["local", "watch"]
    history = main.states.history("watch", 10)
    assert [(run.how, run.error) for run in history] == [("ok", None), ("skipped", "offline")]
    assert main.outbox.listing(10) == []  # a skipped run is no failure: no alert
    read = Commands(main.panel).execute("modules read watch").text
    assert "recent runs (2 shown, 0 failed, 1 skipped)" in read and "skipped: offline" in read


def test_a_module_that_needs_mains_power_waits_for_it(network: Network) -> None:
    clock, power, ran = FakeClock(T0), Power(), threading.Event()
    main = daemon(clock, network, power, spec("backup", lambda log, notify: ran.set(), needs=("power",)))
    power.on_mains = False
    main.tick(T0)
    settled(main)
    assert not ran.is_set()
    assert main.states.history("backup", 1)[0].error == "on battery"
    power.on_mains = True
    main.tick(T0 + timedelta(seconds=30))
    assert ran.wait(WAIT_S)


def test_by_hand_a_module_is_refused_saying_why_unless_forced(network: Network) -> None:
    ran = threading.Event()
    main = daemon(FakeClock(T0), network, Power(),
                  spec("watch", lambda log, notify: ran.set(), needs=("network",)))
    main.start()
    try:
        client = ConsoleClient(console_port(main))
        refused = client.command("modules run watch")
        assert refused.strip() == ("watch not started: it needs network, and the machine is offline; "
                                   "`modules run watch force` runs it anyway")
        assert not ran.is_set()
        assert client.command("modules run watch force").strip() == "watch started"
        assert ran.wait(WAIT_S)
        settled(main)
        read = client.command("modules read watch")
        client.close()
    finally:
        main.shutdown()
    assert "recent runs (1 shown, 0 failed), newest first" in read
