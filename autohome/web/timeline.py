"""The status page's timeline: one lane per module, a mark per run, as plain values for the
SVG template.

Many runs fall on one pixel over a day or a week, so runs that end within `MERGE_PX` of the
next one and ended the same way become one mark ("12 runs, ok"); every mark keeps a title
with its start, duration and error. The number of marks per lane is therefore bounded by the
width, however many runs there were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import NamedTuple

SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
WIDTH = 1000  # the drawing's own units; the browser scales it to the page
LABELS = 150  # room for the module names, left of the lanes
LANE = 18
MIN_MARK = 2.0  # a run shorter than this many units is drawn this wide, to be seen
MERGE_PX = 3.0
AHEAD = 0.04  # of the span, after now
_AXIS = {"1h": (timedelta(minutes=10), "%H:%M"), "24h": (timedelta(hours=3), "%H:%M"),
         "7d": (timedelta(days=1), "%a %d")}


class Run(NamedTuple):
    """One run, as the timeline needs it."""

    module: str
    started: datetime
    duration_s: float
    how: str  # ok, error, timeout, stopped, overrun, running
    error: str | None = None


class Mark(NamedTuple):
    """One drawn mark: a run, or several close runs that ended alike."""

    x: float
    width: float
    kind: str
    title: str


class Lane(NamedTuple):
    name: str
    y: int
    marks: list[Mark]


class Timeline(NamedTuple):
    span: str
    start: datetime
    end: datetime
    width: int
    height: int
    lanes: list[Lane]
    sleeps: list[tuple[float, float]]  # (x, width) where the laptop slept
    axis: list[tuple[float, str]]
    now_x: float


def build_timeline(names: list[str], runs: Iterable[Run], sleeps: Iterable[tuple[datetime, datetime]],
                   now: datetime, span: str, zone: tzinfo) -> Timeline:
    """Lay out the runs of the `span` before `now`, a lane per name, in that order; a little of
    the future is shown too, so that what runs now is not at the very edge."""
    length = SPANS[span]
    end = now + length * AHEAD
    start = end - length
    scale = WIDTH / length.total_seconds()
    start_s = start.timestamp()
    by_module: Mapping[str, list[Run]] = {name: [] for name in names}
    for run in runs:
        lane = by_module.get(run.module)
        if lane is not None:
            lane.append(run)
    lanes = []
    for number, name in enumerate(names):
        marks = _marks(by_module[name], start_s, scale, zone)
        lanes.append(Lane(name, number * LANE, marks))
    gaps = []
    for asleep, awake in sleeps:
        left = max(0.0, (asleep.timestamp() - start_s) * scale)
        right = min(float(WIDTH), (awake.timestamp() - start_s) * scale)
        if right > left:
            gaps.append((LABELS + left, right - left))
    return Timeline(span, start, end, WIDTH + LABELS, max(1, len(names)) * LANE + 20, lanes, gaps,
                    _axis(start, end, span, scale, zone), LABELS + (now - start).total_seconds() * scale)


def _marks(runs: list[Run], start_s: float, scale: float, zone: tzinfo) -> list[Mark]:
    marks: list[Mark] = []
    group: list[Run] = []
    group_left = group_right = 0.0
    for run in sorted(runs, key=lambda run: run.started):
        left = (run.started.timestamp() - start_s) * scale
        right = left + max(run.duration_s * scale, MIN_MARK)
        if right < 0 or left > WIDTH:
            continue
        if group and run.how == group[0].how and left - group_right <= MERGE_PX:
            group.append(run)
            group_right = max(group_right, right)
            continue
        if group:
            marks.append(_mark(group, group_left, group_right, zone))
        group, group_left, group_right = [run], left, right
    if group:
        marks.append(_mark(group, group_left, group_right, zone))
    return marks


def _mark(group: list[Run], left: float, right: float, zone: tzinfo) -> Mark:
    left, right = max(0.0, left), min(float(WIDTH), right)
    first = group[0]
    when = first.started.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    if len(group) == 1:
        title = f"{first.module}: {when}, {_seconds(first.duration_s)}, {first.how}"
    else:
        last = group[-1].started.astimezone(zone).strftime("%H:%M:%S")
        longest = max(run.duration_s for run in group)
        title = (f"{first.module}: {len(group)} runs from {when} to {last}, {first.how}, "
                 f"the longest {_seconds(longest)}")
    errors = [run.error for run in group if run.error]
    if errors:
        title += f": {errors[-1]}"
    return Mark(LABELS + left, max(right - left, MIN_MARK), first.how, title)


def _seconds(value: float) -> str:
    return f"{value:.2f}s" if value < 60 else str(timedelta(seconds=round(value)))


def _axis(start: datetime, end: datetime, span: str, scale: float, zone: tzinfo) -> list[tuple[float, str]]:
    step, form = _AXIS[span]
    local = start.astimezone(zone)
    if step >= timedelta(days=1):
        moment = local.replace(hour=0, minute=0, second=0, microsecond=0) + step
    else:
        unit = int(step.total_seconds())
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        moment = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
            seconds=(seconds // unit + 1) * unit)
    labels = []
    while moment < end:
        labels.append((LABELS + (moment.timestamp() - start.timestamp()) * scale, moment.strftime(form)))
        moment = (moment + step).astimezone(zone)  # across a DST change, the labels stay local
    return labels
