"""The status page's timeline: one lane per module, marks for its runs, as plain values that
svg.py writes out.

Many runs fall on one pixel over a day or a week, so runs that end within `MERGE_PX` of the
next one and ended the same way become one mark ("12 runs, ok"); every mark keeps a title
with its start, duration and error. The number of marks per lane is therefore bounded by the
width, however many runs there were.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import NamedTuple

from markupsafe import escape

SPANS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
WIDTH = 1000  # the drawing's own units; the browser scales it to the page
LABELS = 150  # room for the module names, left of the lanes
LANE = 18
MIN_MARK = 2.0  # a run shorter than this many units is drawn this wide, to be seen
MERGE_PX = 12.0  # runs closer than this that ended alike are one mark (of a day: 17 min)
AHEAD = 0.04  # of the span, after now
ORIGIN_STEPS = 8  # the lanes' origin moves in eighths of the span (3 h of a day)
_AXIS = {"1h": (timedelta(minutes=10), "%H:%M"), "24h": (timedelta(hours=3), "%H:%M"),
         "7d": (timedelta(days=1), "%a %d")}


class Run(NamedTuple):
    """One run, as the timeline needs it; made once per run and kept (see pages.py)."""

    module: str
    start_s: float  # seconds since the epoch
    duration_s: float
    how: str  # ok, error, timeout, stopped, overrun, running
    error: str | None  # escaped for HTML already
    when: str  # its start in local time, for titles
    title: str  # its mark's title, when it is a mark of its own (HTML, escaped)


def make_run(module: str, started: datetime, duration_s: float, how: str, error: str | None,
             zone: tzinfo) -> Run:
    """A run for the timeline: its local start time, its error escaped and its title, once."""
    when = started.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    shown = None if error is None else str(escape(error))
    title = f"{escape(module)}: {when}, {_seconds(duration_s)}, {how}" + (f": {shown}" if shown else "")
    return Run(module, started.timestamp(), duration_s, how, shown, when, title)


class Mark(NamedTuple):
    """One drawn mark: a run, or several close runs that ended alike."""

    x: float
    width: float
    kind: str
    title: str  # HTML: what came from a module is escaped (names are plain words)


class Lane(NamedTuple):
    """A module's lane. Its marks are placed from the timeline's `origin`, not its start, so a
    lane stays the same while time moves on (until the origin steps) and can be kept: `key`
    says what it was made from, and `marks` is None when the caller has it already."""

    name: str
    y: int
    marks: list[Mark] | None
    key: tuple[object, ...]


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
    shift: float  # the lanes are drawn this far to the left: their origin is before the start


def earliest(now: datetime, span: str) -> datetime:
    """The first moment a timeline of `span` at `now` draws: its lanes' origin, which lies up
    to a step before its start."""
    length = SPANS[span]
    return now + length * AHEAD - length - length / ORIGIN_STEPS


def build_timeline(names: list[str], runs: Iterable[Run], sleeps: Iterable[tuple[datetime, datetime]],
                   now: datetime, span: str, zone: tzinfo, kept: Container[object] = ()) -> Timeline:
    """Lay out the runs (in order of their start) of the `span` before `now`, a lane per name,
    in that order; a little of the future is shown too, so what runs now is not at the edge.
    Lanes whose key is in `kept` get no marks: the caller has them."""
    length = SPANS[span]
    end = now + length * AHEAD
    start = end - length
    scale = WIDTH / length.total_seconds()
    start_s = start.timestamp()
    step_s = length.total_seconds() / ORIGIN_STEPS
    origin_s = start_s // step_s * step_s
    reach = WIDTH + step_s * scale  # from the origin: the start may lie a step after it
    by_module: Mapping[str, list[Run]] = {name: [] for name in names}
    for run in runs:  # in order of their start
        lane = by_module.get(run.module)
        if lane is not None and run.start_s + run.duration_s >= origin_s:
            lane.append(run)
    lanes = []
    for number, name in enumerate(names):
        held = by_module[name]
        key = (name, number, span, origin_s, len(held), held[-1] if held else None)
        marks = None if key in kept else _marks(held, origin_s, scale, str(escape(name)), reach)
        lanes.append(Lane(name, number * LANE, marks, key))
    gaps = []
    for asleep, awake in sleeps:
        left = max(0.0, (asleep.timestamp() - start_s) * scale)
        right = min(float(WIDTH), (awake.timestamp() - start_s) * scale)
        if right > left:
            gaps.append((LABELS + left, right - left))
    return Timeline(span, start, end, WIDTH + LABELS, max(1, len(names)) * LANE + 20, lanes, gaps,
                    _axis(start, end, span, scale, zone), LABELS + (now - start).total_seconds() * scale,
                    (start_s - origin_s) * scale)


def _marks(runs: list[Run], start_s: float, scale: float, label: str, reach: float) -> list[Mark]:
    """The lane's marks from `start_s` up to `reach` units; `runs` are in order of their start,
    `label` is the escaped name."""
    marks: list[Mark] = []
    group: list[Run] = []
    group_how = ""
    group_left = group_right = 0.0
    for run in runs:
        left = (run.start_s - start_s) * scale
        if left > reach:
            break
        width = run.duration_s * scale
        right = left + (width if width > MIN_MARK else MIN_MARK)
        if right < 0:
            continue
        if run.how == group_how and left - group_right <= MERGE_PX:
            group.append(run)
            if right > group_right:
                group_right = right
            continue
        if group:
            marks.append(_mark(group, group_left, group_right, label, reach))
        group, group_how, group_left, group_right = [run], run.how, left, right
    if group:
        marks.append(_mark(group, group_left, group_right, label, reach))
    return marks


def _mark(group: list[Run], left: float, right: float, label: str, reach: float) -> Mark:
    left, right = max(0.0, left), min(reach, right)
    first = group[0]
    if len(group) == 1:
        title = first.title
    else:
        longest = max(run.duration_s for run in group)
        title = (f"{label}: {len(group)} runs from {first.when} to {group[-1].when[11:]}, "
                 f"{first.how}, the longest {_seconds(longest)}")
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
