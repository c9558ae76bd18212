"""Which due runs start now: a run whose NEEDS do not hold is skipped (and due again at the
next tick), a catch-up is made or skipped as the module's MISSED says, and after a wake the
modules that need the network wait for it a while instead of crying wolf."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from autohome.catalog.loader import ModuleSpec
from autohome.clock import Clock
from autohome.durations import format_duration
from autohome.logs.tree import get_logger
from autohome.running.conditions import Machine
from autohome.running.deadlines import Deadlines
from autohome.storage.state import ModuleStates, ModuleStatus, Outcome, RunRecord

log = get_logger("autohome.main")

WAIT_STEP = timedelta(seconds=2)  # after a wake, how often the network is asked again


class Admission:
    """The gate between "due" and "started"."""

    def __init__(self, machine: Machine, states: ModuleStates, clock: Clock, timers: Deadlines,
                 start: Callable[[ModuleSpec, datetime], object], tick: timedelta,
                 wake_network_wait: timedelta = timedelta(minutes=2)) -> None:
        self.machine = machine
        self.states = states
        self.clock = clock
        self.timers = timers
        self._start = start  # submits a run (RunExecutor.submit_due)
        self.tick = tick
        self.wake_network_wait = wake_network_wait
        self._skipping: dict[str, str] = {}  # module -> why its runs are skipped (said once)
        self.waiting: dict[str, ModuleSpec] = {}  # modules waiting for the network after a wake

    def admit(self, due: list[ModuleSpec], statuses: dict[str, ModuleStatus], now: datetime,
              gap: str = "") -> tuple[list[ModuleSpec], list[str]]:
        """The due runs that start now, and the modules whose missed run is skipped (their
        schedule counts from now). `gap` says why the tick is late, if it is: "asleep" after a
        wake, "stopped" at the first tick after a start."""
        self.machine.forget()  # the network and the power as they are now
        start: list[ModuleSpec] = []
        missed: list[str] = []
        for spec in due:
            if spec.name in self.waiting:
                continue
            why = self._missed(spec, statuses.get(spec.name), now, gap)
            if why:
                self._skip(spec.name, now, why)
                missed.append(spec.name)
                continue
            why = self.machine.why_not(spec.needs) if spec.needs else ""
            if not why:
                self._skipping.pop(spec.name, None)
                start.append(spec)
            elif gap == "asleep" and why == "offline":
                self.waiting[spec.name] = spec
            elif self._skipping.get(spec.name) != why:
                self._skip(spec.name, now, why)  # once for the stretch; due again at every tick
        if self.waiting and gap == "asleep":
            log.info("waiting for the network for %s (up to %s)", ", ".join(sorted(self.waiting)),
                     format_duration(self.wake_network_wait))
            self.timers.at(now + WAIT_STEP, lambda: self._look_again(now), "the wait for the network")
        return start, missed

    def _missed(self, spec: ModuleSpec, status: ModuleStatus | None, now: datetime, gap: str) -> str:
        """Why a catch-up is skipped ("": it is made)."""
        if spec.missed == "once" or status is None or status.last_due_at is None:
            return ""
        late = now - spec.schedule.next_run(status.last_due_at, status.first_seen or now)
        if late < self.tick:  # an ordinary tick: due since the last one
            return ""
        if spec.missed == "skip" or (isinstance(spec.missed, timedelta) and late > spec.missed):
            return f"missed while {gap}" if gap else "missed"
        return ""

    def _skip(self, name: str, now: datetime, why: str) -> None:
        self._skipping[name] = why
        self.states.record_skip(name, RunRecord(now, 0.0, why, Outcome.SKIPPED))
        log.info("module %s skipped: %s", name, why)

    def _look_again(self, woke: datetime) -> None:
        """After a wake: start the waiting modules once the network answers, or skip them
        when it has not within the wait."""
        self.machine.forget()
        now = self.clock.now()
        waiting, online = dict(self.waiting), self.machine.is_online()
        if not online and now - woke < self.wake_network_wait:
            self.timers.at(now + WAIT_STEP, lambda: self._look_again(woke), "the wait for the network")
            return
        self.waiting.clear()
        if online:
            waited = timedelta(seconds=max(1, round((now - woke).total_seconds())))
            log.info("online after %s; running %s", format_duration(waited), ", ".join(sorted(waiting)))
            for spec in waiting.values():
                self.states.mark_due(spec.name, now)
                self._start(spec, now)
            return
        log.info("still offline after %s: %s skipped until the network is back",
                 format_duration(self.wake_network_wait), ", ".join(sorted(waiting)))
        for name in waiting:
            self._skip(name, now, "offline")

    def refusal(self, spec: ModuleSpec) -> str:
        """Why a run by hand would not start now ("": it would)."""
        self.machine.forget()
        return self.machine.why_not(spec.needs) if spec.needs else ""
