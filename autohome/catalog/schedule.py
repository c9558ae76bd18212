"""Schedules: every INTERVAL, daily AT local times, or a CRON expression; when each is next due.

Calendar schedules work on local wall-clock time in the configured zone. A wall time that
does not exist (the hour skipped when clocks go forward) runs once, shifted by the gap; a
wall time that happens twice (when clocks go back) runs only the first time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import NamedTuple, Protocol

from autohome.durations import format_duration

_CLOCK_TIME = r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\s*$"  # re caches it on first use
_MAX_CRON_STEPS = 1000


class Schedule(Protocol):
    """When a module runs."""

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """The first moment the module is due, given when it last ran (None: never)."""
        ...

    def describe(self) -> str:
        """The schedule as the console shows it."""
        ...


def is_due(schedule: Schedule, last_due_at: datetime | None, first_seen: datetime,
           now: datetime) -> bool:
    """Whether a tick at `now` should start the module."""
    return now >= schedule.next_run(last_due_at, first_seen)


class IntervalSchedule(NamedTuple):
    """Due when it never ran, or when the interval has passed since its last run."""

    interval: timedelta

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """When first seen if it never ran, else one interval after the last run."""
        return first_seen if last_due_at is None else last_due_at + self.interval

    def describe(self) -> str:
        """'every 5m'."""
        return f"every {format_duration(self.interval)}"


def _localize(wall: datetime, zone: tzinfo) -> datetime:
    """A naive wall time in the zone, as UTC; fold=0 picks the first of a repeated hour and
    moves a skipped wall time forward by the gap."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


class DailySchedule(NamedTuple):
    """Due at fixed local times every day."""

    times: tuple[time, ...]
    zone: tzinfo

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """The first listed time strictly after the last run (or after first seen)."""
        after = last_due_at or first_seen
        day: date = after.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(4):
            for moment in self.times:
                candidate = _localize(datetime.combine(day, moment), self.zone)
                if candidate > after:
                    return candidate
            day += timedelta(days=1)
        raise AssertionError("a daily schedule always has a next run")  # pragma: no cover

    def describe(self) -> str:
        """'daily 08:00, 18:30'."""
        return "daily " + ", ".join(t.strftime("%H:%M:%S" if t.second else "%H:%M") for t in self.times)


class CronSchedule(NamedTuple):
    """Due at the times a five-field cron expression names, in local time."""

    expression: str
    zone: tzinfo

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """The first matching time strictly after the last run (or after first seen)."""
        after = last_due_at or first_seen
        from croniter import croniter  # imported by the first CRON module, not at start-up

        wall = after.astimezone(self.zone).replace(tzinfo=None)
        steps = croniter(self.expression, wall)
        for _ in range(_MAX_CRON_STEPS):
            candidate = _localize(steps.get_next(datetime), self.zone)
            if candidate > after:
                return candidate
        raise ValueError(f"cron {self.expression!r} has no time after {after}")  # pragma: no cover

    def describe(self) -> str:
        """'cron */15 9-17 * * 1-5'."""
        return f"cron {self.expression}"


def parse_at(value: object, zone: tzinfo) -> DailySchedule:
    """AT = "08:00" or ["08:00", "18:30"]; raise ValueError saying what is allowed."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f'{value!r} is not allowed: use AT = "08:00" or AT = ["08:00", "18:30"]')
    times = set()
    for item in items:
        found = re.match(_CLOCK_TIME, item) if isinstance(item, str) else None
        if not found:
            raise ValueError(f"{item!r} is not a time of day: use 24-hour HH:MM such as \"07:30\"")
        hour, minute, second = found.groups()
        times.add(time(int(hour), int(minute), int(second or 0)))
    return DailySchedule(tuple(sorted(times)), zone)


def parse_cron(value: object, zone: tzinfo) -> CronSchedule:
    """CRON = "*/15 9-17 * * 1-5"; raise ValueError saying what is allowed."""
    from croniter import croniter

    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(
            f"{value!r} is not a five-field cron expression (minute hour day month weekday), "
            'such as "*/15 9-17 * * 1-5"'
        )
    return CronSchedule(" ".join(value.split()), zone)
