"""Faults of the machine, not of a module: a wall clock set back or forward, a full disk, a
damaged database, a terminal that stops reading, log files moved under AutoHome."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from conftest import WAIT_S, log_seen, spec

from autohome.app import Main, build
from autohome.clock import SystemClock, utc_now
from autohome.config import Config


class SettableWall:
    """A wall clock that runs with the real one until a test sets it back or forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@contextmanager
def running(main: Main) -> Iterator[None]:
    thread = threading.Thread(target=main.run, name="loop", daemon=True)
    thread.start()
    try:
        yield
    finally:
        main.request_stop()
        thread.join(WAIT_S)
        assert not thread.is_alive()


def counting_main(wall: SettableWall, runs: list[datetime], ran: threading.Condition) -> Main:
    def counter(log, notify):
        with ran:
            runs.append(wall())
            ran.notify_all()

    config = Config(console_enabled=False, web_enabled=False, tick=timedelta(seconds=0.25))
    return build(config, SystemClock(wall=wall), [spec("counter", counter, interval_s=0.25)])


def wait_for_runs(runs: list[datetime], ran: threading.Condition, count: int) -> None:
    with ran:
        assert ran.wait_for(lambda: len(runs) >= count, WAIT_S), f"only {len(runs)} runs"


def test_a_wall_clock_set_back_an_hour_stalls_nothing_and_says_by_how_much() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("the clock went back by 1h") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = -timedelta(hours=1)  # an NTP step after waking, a dual-boot clock
        assert said.wait()
        before = len(runs)
        wait_for_runs(runs, ran, before + 2)  # before: no tick for the whole hour
    assert all(moment < runs[0] for moment in runs[before:])


def test_a_wall_clock_set_back_less_than_a_tick_is_noticed_too() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("the clock went back by") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = -timedelta(seconds=40)
        assert said.wait()
        before = len(runs)
        wait_for_runs(runs, ran, before + 2)


def test_a_wall_clock_set_forward_is_a_gap_run_once() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("woke after a gap of 1d") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = timedelta(days=1)
        assert said.wait()
        wait_for_runs(runs, ran, len(runs) + 1)
