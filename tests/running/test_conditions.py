"""Runs that wait for the network or mains power: skipped while they are not there (an outcome
of its own, no alert), due again at the next tick; by hand, refused unless forced."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S, FakeClock
from support.console import ConsoleClient, console_port
from support.modules import spec, write_module
from support.processes import clean_env, run_autohome

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


WATCH = '''
    """Says when the page is down, like website_watch."""
    import socket
    INTERVAL = "1h"
    NEEDS = ["network"]
    def run(log, notify):
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
        except OSError:
            notify("the page is down")
            raise
        log.info("watch ran")
'''
PLAIN = '''
    INTERVAL = "1h"
    def run(log, notify):
        log.info("plain ran")
'''


def test_after_a_wake_network_modules_wait_for_it_and_cry_no_wolf(tmp_path: Path, network: Network,
                                                                  daemon_factory) -> None:
    write_module(tmp_path / "modules", "watch", WATCH.format(port=network.address[1]))
    write_module(tmp_path / "modules", "plain", PLAIN)
    network.up()
    env = clean_env(AUTOHOME_NETWORK_PROBE=f"127.0.0.1:{network.address[1]}")
    daemon = daemon_factory(tmp_path, "-t", "--no-console", env=env)
    daemon.wait_for_all("watch ran", "plain ran")
    network.down()  # the lid closes; the Wi-Fi is not back when it opens
    daemon.send("sleep 3h\n")
    daemon.wait_for_all("waiting for the network for watch", "plain ran")  # plain ran at once
    daemon.send("10s\n")
    network.up()  # back some seconds after the wake
    daemon.send("10s\n")
    daemon.wait_for(r"online after \d+s; running watch")  # not a whole tick late: 2 s steps
    daemon.wait_for("watch ran")
    daemon.close_stdin()
    assert daemon.wait() == 0
    log = "\n".join(daemon.lines)
    assert log.count("watch ran") == 2 and log.count("plain ran") == 2
    assert "the page is down" not in log and "failed" not in log  # no wolf cried


def test_missed_runs_are_made_or_skipped_as_the_module_says(tmp_path: Path) -> None:
    for name, missed in (("once", None), ("skip", "skip"), ("within2h", "2h")):
        setting = f"MISSED = {missed!r}\n" if missed else ""
        write_module(tmp_path / "modules", name, f'INTERVAL = "1h"\n{setting}def run(log, notify):\n'
                     f'    log.info("{name} ran")\n')
    # A 3h sleep: each is 2h late. Then a 4h sleep: each is 3h late.
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="sleep 3h\nsleep 4h\n",
                          env=clean_env(AUTOHOME_TIMEZONE="UTC"))
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "logs" / "test.log").read_text()
    assert log.count("once ran") == 3  # at the start, after each wake
    assert log.count("skip ran") == 1 and log.count("module skip skipped: missed while asleep") == 2
    assert log.count("within2h ran") == 2  # 2h late: made; 3h late: skipped
    assert log.count("module within2h skipped: missed while asleep") == 1


def test_between_and_a_cron_list_shape_the_next_runs(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "night", 'INTERVAL = "1h"\nBETWEEN = "22:00-06:00"\n'
                 'def run(log, notify):\n    pass\n')
    write_module(tmp_path / "modules", "twice", 'CRON = ["0 8 * * *", "30 18 * * *"]\n'
                 'def run(log, notify):\n    pass\n')
    write_module(tmp_path / "modules", "wrong", 'INTERVAL = "1h"\nBETWEEN = "22:00"\n'
                 'def run(log, notify):\n    pass\n')
    result = run_autohome(tmp_path, "check", env=clean_env(AUTOHOME_TIMEZONE="UTC"))
    lines = result.stdout.splitlines()
    night = lines[lines.index("night: ok, every 1h, between 22:00-06:00") + 1:][:5]
    hours = [int(line.split()[1][:2]) for line in night]
    assert all(hour >= 22 or hour < 6 for hour in hours), night  # across midnight
    assert lines[lines.index("twice: ok, cron 0 8 * * *; 30 18 * * *") + 1:][:2] != []
    start = lines.index("twice: ok, cron 0 8 * * *; 30 18 * * *") + 1
    twice = [line.split()[1] for line in lines[start:start + 4]]
    assert sorted(set(twice)) == ["08:00:00", "18:30:00"]
    assert "wrong: broken: BETWEEN '22:00' is not a stretch of the day" in result.stdout
    assert result.returncode == 1  # a broken module


def test_a_module_runs_only_in_its_window_and_at_its_start_when_overdue(network: Network) -> None:
    from datetime import time, timezone

    from autohome.catalog.schedule import IntervalSchedule, Window, WindowedSchedule

    clock, ran = FakeClock(T0), []  # T0 is 12:00 UTC
    hour = IntervalSchedule(timedelta(hours=1))
    window = WindowedSchedule(hour, (Window(time(13), time(14)),), timezone.utc)
    main = daemon(clock, network, Power(), spec("lunch", lambda log, notify: ran.append("lunch"))
                  ._replace(schedule=window))
    for minutes in (0, 30, 59):
        main.tick(T0 + timedelta(minutes=minutes))
    settled(main)
    assert ran == []  # overdue since 12:00, but outside its window
    main.tick(T0 + timedelta(hours=1))
    settled(main)
    assert ran == ["lunch"]  # at the window's start
    assert main.states.get("lunch").last_due_at == T0 + timedelta(hours=1)
