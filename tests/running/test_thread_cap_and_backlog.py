"""The Runner's thread cap, backlog and drainer, and the schedule arithmetic."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from support.clock import T0, WAIT_S

from autohome.loop import Wake, classify_wake, last_tick, next_tick, wall_clock_anchor
from autohome.running.runner import Runner, Submission


class Gate:
    """Jobs that block until the test opens their gate, recording the order they started in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.lock = threading.Lock()
        self.gates: dict[str, threading.Event] = {}

    def job(self, name: str):
        gate = self.gates.setdefault(name, threading.Event())

        def run() -> None:
            with self.lock:
                self.started.append(name)
            gate.wait(WAIT_S)

        return run

    def open(self, *names: str) -> None:
        for name in names or tuple(self.gates):
            self.gates[name].set()


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not before (other tests' threads may come and go)."""
    return [thread for thread in threading.enumerate() if thread not in before]


def drainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "backlog-drainer"]


def test_runs_within_the_cap_start_at_once_without_a_drainer() -> None:
    runner, gate = Runner(max_threads=3), Gate()
    before = set(threading.enumerate())
    assert [runner.submit(n, gate.job(n)) for n in "ab"] == [Submission.STARTED] * 2
    snapshot = runner.snapshot()
    assert set(snapshot.running) == {"a", "b"} and not snapshot.queued
    assert not snapshot.drainer_alive and not drainer_threads()
    names = {t.name for t in threading.enumerate()}
    assert {"module:a", "module:b"} <= names
    gate.open()
    assert runner.wait_idle(timeout_s=WAIT_S)
    for thread in new_threads(before):
        thread.join(WAIT_S)
    assert new_threads(before) == []


def test_overflow_waits_in_a_fifo_backlog_fed_by_one_drainer() -> None:
    runner, gate = Runner(max_threads=2), Gate()
    results = [runner.submit(n, gate.job(n)) for n in "abcde"]
    assert results == [Submission.STARTED] * 2 + [Submission.QUEUED] * 3
    snapshot = runner.snapshot()
    assert snapshot.running == ("a", "b") and snapshot.queued == ("c", "d", "e")
    assert snapshot.drainer_alive and len(drainer_threads()) == 1

    gate.open("a")  # one slot frees: the oldest queued run takes it
    assert runner.wait_for(lambda now: "c" in now.running, 3), (
        runner.snapshot(), gate.started, [t.name for t in threading.enumerate()])
    assert runner.snapshot().queued == ("d", "e")
    gate.open()
    assert runner.wait_idle(timeout_s=WAIT_S)
    assert gate.started == list("abcde")
    assert runner.wait_for(lambda now: not now.drainer_alive, WAIT_S)


def test_a_name_already_running_or_queued_is_not_queued_again() -> None:
    runner, gate = Runner(max_threads=1), Gate()
    runner.submit("a", gate.job("a"))
    runner.submit("b", gate.job("b"))
    assert runner.submit("a", gate.job("a")) is Submission.BUSY
    assert runner.submit("b", gate.job("b")) is Submission.BUSY
    assert runner.is_busy("a") and runner.is_busy("b") and not runner.is_busy("c")
    gate.open()
    assert runner.wait_idle(timeout_s=WAIT_S)


def test_close_drops_the_backlog_and_reports_what_still_runs() -> None:
    runner, gate = Runner(max_threads=1), Gate()
    for name in "abc":
        runner.submit(name, gate.job(name))
    dropped, still_running = runner.close(grace_s=0.05)
    assert dropped == ["b", "c"] and still_running == ["a"]
    assert runner.submit("d", gate.job("d")) is Submission.CLOSED
    gate.open()
    assert runner.wait_idle(timeout_s=WAIT_S)
    assert gate.started == ["a"]


def test_a_job_that_raises_frees_its_slot() -> None:
    runner, gate = Runner(max_threads=1), Gate()

    def broken() -> None:
        raise RuntimeError("bug")

    runner.submit("broken", broken)
    runner.submit("next", gate.job("next"))
    gate.open()
    assert runner.wait_idle(timeout_s=WAIT_S)
    assert gate.started == ["next"]


def test_many_runs_leave_no_threads_behind() -> None:
    runner = Runner(max_threads=4)
    before = set(threading.enumerate())
    for round_number in range(20):
        for index in range(10):
            runner.submit(f"m{round_number}-{index}", lambda: None)
        assert runner.wait_idle(timeout_s=WAIT_S)
    assert runner.wait_for(lambda now: not now.drainer_alive, WAIT_S)
    for thread in new_threads(before):
        thread.join(WAIT_S)
    assert new_threads(before) == []


def test_ticks_fall_on_the_wall_clock_of_the_zone() -> None:
    tick = timedelta(seconds=30)
    started = datetime(2026, 3, 1, 7, 0, 17, 500000, tzinfo=timezone.utc)
    anchor = wall_clock_anchor(started, tick, timezone.utc)
    assert anchor == datetime(2026, 3, 1, 7, 0, 0, tzinfo=timezone.utc)
    assert next_tick(anchor, tick, started) == datetime(2026, 3, 1, 7, 0, 30, tzinfo=timezone.utc)
    assert last_tick(anchor, tick, started - timedelta(hours=1)) == datetime(2026, 3, 1, 6, 0, 0,
                                                                             tzinfo=timezone.utc)
    # An hourly tick in a zone half an hour off UTC ticks on the local hour.
    india = ZoneInfo("Asia/Kolkata")
    hourly = wall_clock_anchor(started, timedelta(hours=1), india)
    assert hourly.astimezone(india).minute == 0 and hourly <= started


def test_next_tick_is_the_next_boundary_after_now() -> None:
    tick = timedelta(seconds=30)
    assert next_tick(T0, tick, T0) == T0 + tick
    assert next_tick(T0, tick, T0 + timedelta(seconds=31)) == T0 + 2 * tick
    # After a laptop sleep of an hour, the next tick is the first boundary after waking.
    assert next_tick(T0, tick, T0 + timedelta(hours=1, seconds=5)) == T0 + timedelta(hours=1, seconds=30)


def test_a_wake_is_on_time_after_a_gap_or_after_the_clock_went_back() -> None:
    tick, deadline = timedelta(seconds=30), T0 + timedelta(seconds=30)
    assert classify_wake(deadline, deadline + timedelta(seconds=29), tick) is Wake.ON_TIME
    assert classify_wake(deadline, deadline + tick, tick) is Wake.SLEPT
    assert classify_wake(deadline, deadline - timedelta(seconds=31), tick) is Wake.WENT_BACK
