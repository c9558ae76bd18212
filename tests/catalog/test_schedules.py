"""Schedules: intervals, daily AT times and CRON, across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from support.clock import T0

from autohome.catalog.schedule import IntervalSchedule, is_due, parse_at, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def runs(schedule, start: datetime, count: int) -> list[datetime]:
    """The first `count` runs a ticking daemon would make, starting at `start`."""
    moments, last = [], None
    for _ in range(count):
        last = schedule.next_run(last, start)
        moments.append(last)
    return moments


def test_interval_is_due_at_once_then_every_interval() -> None:
    every_minute = IntervalSchedule(timedelta(minutes=1))
    assert is_due(every_minute, None, T0, T0)
    assert not is_due(every_minute, T0, T0, T0 + timedelta(seconds=59))
    assert is_due(every_minute, T0, T0, T0 + timedelta(minutes=1))
    assert every_minute.describe() == "every 1m"


def test_at_runs_at_the_next_listed_time_not_merely_because_it_never_ran() -> None:
    daily = parse_at(["18:30", "08:00"], BERLIN)
    seen = berlin(2026, 6, 1, 9, 0)
    assert not is_due(daily, None, seen, seen)
    assert daily.next_run(None, seen) == berlin(2026, 6, 1, 18, 30)
    assert daily.next_run(berlin(2026, 6, 1, 18, 30), seen) == berlin(2026, 6, 2, 8, 0)
    assert daily.describe() == "daily 08:00, 18:30"


def test_daily_0230_runs_once_on_both_dst_days() -> None:
    daily = parse_at("02:30", BERLIN)
    spring = runs(daily, berlin(2026, 3, 28, 12, 0), 3)
    # 29 March 02:30 does not exist in Berlin: it runs once, at 03:30 CEST.
    assert [m.astimezone(BERLIN).strftime("%d %H:%M %Z") for m in spring] == [
        "29 03:30 CEST", "30 02:30 CEST", "31 02:30 CEST"]
    autumn = runs(daily, berlin(2026, 10, 24, 12, 0), 3)
    # 25 October 02:30 happens twice: it runs the first time only.
    assert [m.astimezone(BERLIN).strftime("%d %H:%M %Z") for m in autumn] == [
        "25 02:30 CEST", "26 02:30 CET", "27 02:30 CET"]
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_cron_follows_local_time_across_dst() -> None:
    nightly = parse_cron("30 2 * * *", BERLIN)
    spring = runs(nightly, berlin(2026, 3, 28, 12, 0), 2)
    assert [m.astimezone(BERLIN).strftime("%d %H:%M %Z") for m in spring] == [
        "29 03:30 CEST", "30 02:30 CEST"]
    autumn = runs(nightly, berlin(2026, 10, 24, 12, 0), 2)
    assert [m.astimezone(BERLIN).strftime("%d %H:%M %Z") for m in autumn] == [
        "25 02:30 CEST", "26 02:30 CET"]


def test_cron_office_hours() -> None:
    office = parse_cron("*/15 9-17 * * 1-5", BERLIN)
    friday_evening = berlin(2026, 6, 5, 17, 50)
    assert office.next_run(None, friday_evening) == berlin(2026, 6, 8, 9, 0)  # Monday
    assert office.describe() == "cron */15 9-17 * * 1-5"


def test_after_a_long_sleep_a_calendar_job_runs_once() -> None:
    daily = parse_at("08:00", BERLIN)
    last = berlin(2026, 6, 1, 8, 0)
    woke = berlin(2026, 6, 4, 12, 0)  # three mornings missed
    assert is_due(daily, last, last, woke)
    assert daily.next_run(woke, last) == berlin(2026, 6, 5, 8, 0)


@pytest.mark.parametrize("value", ["25:00", "8am", "", [], ["08:00", 9]])
def test_bad_at_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_at(value, timezone.utc)


@pytest.mark.parametrize("value", ["* * * *", "61 * * * *", "every day", 5])
def test_bad_cron_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="five-field cron"):
        parse_cron(value, timezone.utc)
