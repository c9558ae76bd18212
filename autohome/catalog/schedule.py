"""Schedules: every INTERVAL, daily AT local times, or a CRON expression; when each is next due.

Calendar schedules work on local wall-clock time in the configured zone. A wall time that
does not exist (the hour skipped when clocks go forward) runs once, shifted by the gap; a
wall time that happens twice (when clocks go back) runs only the first time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import NamedTuple, Protocol

from autohome.durations import CLOCK_TIME, Window, format_duration, parse_between  # noqa: F401 - re-exported for BETWEEN

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
    """Due at the times five-field cron expressions name (the earliest of them), in local time."""

    expressions: tuple[str, ...]
    zone: tzinfo

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """The first matching time strictly after the last run (or after first seen)."""
        after = last_due_at or first_seen
        return min(self._next(expression, after) for expression in self.expressions)

    def _next(self, expression: str, after: datetime) -> datetime:
        from croniter import croniter  # imported by the first CRON module, not at start-up

        wall = after.astimezone(self.zone).replace(tzinfo=None)
        steps = croniter(expression, wall)
        for _ in range(_MAX_CRON_STEPS):
            candidate = _localize(steps.get_next(datetime), self.zone)
            if candidate > after:
                return candidate
        raise ValueError(f"cron {expression!r} has no time after {after}")  # pragma: no cover

    def describe(self) -> str:
        """'cron */15 9-17 * * 1-5' (several: joined by '; ')."""
        return f"cron {'; '.join(self.expressions)}"


class WindowedSchedule(NamedTuple):
    """A schedule whose runs wait for a window of the day (BETWEEN): a run due outside every
    window comes at the next window's start."""

    inner: Schedule
    windows: tuple[Window, ...]
    zone: tzinfo

    @property
    def interval(self) -> timedelta | None:
        """The inner schedule's interval, if it has one."""
        return getattr(self.inner, "interval", None)

    def next_run(self, last_due_at: datetime | None, first_seen: datetime) -> datetime:
        """The inner schedule's next run, or the next window's start when that lies outside."""
        return self.first_open(self.inner.next_run(last_due_at, first_seen))

    def first_open(self, moment: datetime) -> datetime:
        """`moment` if it lies in a window, else the next window's start."""
        local = moment.astimezone(self.zone)
        if any(window.holds(local.time()) for window in self.windows):
            return moment
        starts = [_localize(datetime.combine(local.date() + timedelta(days=days), window.start), self.zone)
                  for days in (0, 1, 2) for window in self.windows]
        return min(start for start in starts if start > moment)

    def describe(self) -> str:
        """'every 1h, between 08:00-22:00'."""
        return f"{self.inner.describe()}, between {', '.join(window.describe() for window in self.windows)}"


def parse_at(value: object, zone: tzinfo) -> DailySchedule:
    """AT = "08:00" or ["08:00", "18:30"]; raise ValueError saying what is allowed."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f'{value!r} is not allowed: use AT = "08:00" or AT = ["08:00", "18:30"]')
    times = set()
    for item in items:
        found = re.match(CLOCK_TIME, item) if isinstance(item, str) else None
        if not found:
            raise ValueError(f"{item!r} is not a time of day: use 24-hour HH:MM such as \"07:30\"")
        hour, minute, second = found.groups()
        times.add(time(int(hour), int(minute), int(second or 0)))
    return DailySchedule(tuple(sorted(times)), zone)


def parse_cron(value: object, zone: tzinfo) -> CronSchedule:
    """CRON = "*/15 9-17 * * 1-5", or a list of them; raise ValueError saying what is allowed."""
    from croniter import croniter

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f'{value!r} is not allowed: use a five-field cron expression such as '
                         'CRON = "*/15 9-17 * * 1-5", or a list of them')
    for item in items:
        if not isinstance(item, str) or len(item.split()) != 5 or not croniter.is_valid(item):
            raise ValueError(
                f"{item!r} is not a five-field cron expression (minute hour day month weekday), "
                'such as "*/15 9-17 * * 1-5"'
            )
    return CronSchedule(tuple(" ".join(item.split()) for item in items), zone)
