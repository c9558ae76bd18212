"""The status page's timeline: one lane per module, marks for its runs, as plain values that
svg.py writes out.

Many runs fall on one pixel over a day or a week, so runs that end within `MERGE_PX` of the
next one and ended the same way become one mark ("12 runs, ok"); every mark keeps a title
with its start, duration and error. The number of marks per lane is therefore bounded by the
width, however many runs there were.
"""

from __future__ import annotations

import bisect
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
    """One run, or the runs of one bucket that ended alike (the day and the week are drawn
    from buckets: storage.runs.BUCKET_S), as the timeline needs them; made once and kept."""

    module: str
    start_s: float  # seconds since the epoch (of the first run)
    duration_s: float  # from the first start to the end of the last run
    how: str  # ok, error, timeout, stopped, overrun, running
    error: str | None  # escaped for HTML already (the newest)
    when: str  # its start in local time, for titles
    title: str  # its mark's title, when it is a mark of its own (HTML, escaped; "" for a bucket)
    runs: int = 1  # how many runs it stands for
    last_s: float = 0.0  # the last run's start, for a bucket of several
    longest_s: float = 0.0  # of a bucket of several

    def bucket_title(self, label: str, zone: tzinfo) -> str:
        """The title of a bucket that holds one run (made when it is drawn, not when read)."""
        return (f"{label}: {_local(self.start_s, zone)}, {_seconds(self.longest_s)}, {self.how}"
                + (f": {self.error}" if self.error else ""))


def make_run(module: str, started: datetime, duration_s: float, how: str, error: str | None,
             zone: tzinfo) -> Run:
    """A run for the timeline: its local start time, its error escaped and its title, once."""
    when = started.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    shown = None if error is None else str(escape(error))
    title = f"{escape(module)}: {when}, {_seconds(duration_s)}, {how}" + (f": {shown}" if shown else "")
    return Run(module, started.timestamp(), duration_s, how, shown, when, title)


def make_bucket(module: str, first_s: float, last_s: float, count: int, longest_s: float, how: str,
                error: str | None) -> Run:
    """The runs of a bucket that ended alike, for the timeline; its title is made only if it
    is drawn as a mark of its own (a week holds thousands of buckets)."""
    shown = None if error is None else str(escape(error))
    return Run(module, first_s, last_s - first_s + longest_s, how, shown, "", "", count, last_s, longest_s)


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
    sleeps: list[tuple[float, float, str]]  # (x, width, kind) of each gap: asleep, stopped, crashed
    axis: list[tuple[float, str]]
    now_x: float
    shift: float  # the lanes are drawn this far to the left: their origin is before the start


def earliest(now: datetime, span: str) -> datetime:
    """The first moment a timeline of `span` at `now` draws: its lanes' origin, which lies up
    to a step before its start."""
    length = SPANS[span]
    return now + length * AHEAD - length - length / ORIGIN_STEPS


def build_timeline(names: list[str], runs: Mapping[str, list[Run]],
                   sleeps: Iterable[tuple[datetime, datetime, str]], now: datetime, span: str, zone: tzinfo,
                   kept: Container[object] = ()) -> Timeline:
    """Lay out the runs (by module, in order of their start) of the `span` before `now`, a
    lane per name, in that order; a little of the future is shown too, so what runs now is not
    at the edge. Lanes whose key is in `kept` get no marks: the caller has them."""
    length = SPANS[span]
    end = now + length * AHEAD
    start = end - length
    scale = WIDTH / length.total_seconds()
    start_s = start.timestamp()
    step_s = length.total_seconds() / ORIGIN_STEPS
    origin_s = start_s // step_s * step_s
    reach = WIDTH + step_s * scale  # from the origin: the start may lie a step after it
    lanes = []
    for number, name in enumerate(names):
        every = runs.get(name, [])
        nearby = every[bisect.bisect_left(every, origin_s - length.total_seconds(),
                                          key=lambda run: run.start_s):]
        held = [run for run in nearby if run.start_s + run.duration_s >= origin_s]
        key = (name, number, span, origin_s, len(held), held[-1] if held else None)
        marks = None if key in kept else _marks(held, origin_s, scale, str(escape(name)), reach, zone)
        lanes.append(Lane(name, number * LANE, marks, key))
    gaps = []
    for asleep, awake, kind in sleeps:
        left = max(0.0, (asleep.timestamp() - start_s) * scale)
        right = min(float(WIDTH), (awake.timestamp() - start_s) * scale)
        if right > left:
            gaps.append((LABELS + left, right - left, kind))
    return Timeline(span, start, end, WIDTH + LABELS, max(1, len(names)) * LANE + 20, lanes, gaps,
                    _axis(start, end, span, scale, zone), LABELS + (now - start).total_seconds() * scale,
                    (start_s - origin_s) * scale)


def _marks(runs: list[Run], start_s: float, scale: float, label: str, reach: float,
           zone: tzinfo) -> list[Mark]:
    """The lane's marks from `start_s` up to `reach` units; `runs` are in order of their start,
    `label` is the escaped name. Runs that ended alike merge when they are close, whatever
    ended otherwise between them (a failure among many good runs is a mark of its own, drawn
    over theirs): a lane has a handful of marks per way of ending, not one per run."""
    groups: dict[str, tuple[list[Run], float, float]] = {}  # how -> (runs, left, right)
    marks: list[Mark] = []
    for run in runs:
        left = (run.start_s - start_s) * scale
        if left > reach:
            break
        width = run.duration_s * scale
        right = left + (width if width > MIN_MARK else MIN_MARK)
        if right < 0:
            continue
        held = groups.get(run.how)
        if held is not None and left - held[2] <= MERGE_PX:
            held[0].append(run)
            if right > held[2]:
                groups[run.how] = (held[0], held[1], right)
            continue
        if held is not None:
            marks.append(_mark(held[0], held[1], held[2], label, reach, zone))
        groups[run.how] = ([run], left, right)
    marks.extend(_mark(group, left, right, label, reach, zone) for group, left, right in groups.values())
    marks.sort(key=lambda mark: (mark.kind != "ok", mark.x))  # failures drawn over good runs
    return marks


def _mark(group: list[Run], left: float, right: float, label: str, reach: float, zone: tzinfo) -> Mark:
    left, right = max(0.0, left), min(reach, right)
    first, last = group[0], group[-1]
    count = sum(run.runs for run in group)
    if count == 1:
        title = first.title or first.bucket_title(label, zone)
    else:
        longest = max(run.longest_s if run.runs > 1 else run.duration_s for run in group)
        until = _local(last.last_s or last.start_s, zone)[11:]
        title = (f"{label}: {count} runs from {_local(first.start_s, zone)} to {until}, {first.how}, "
                 f"the longest {_seconds(longest)}")
        errors = [run.error for run in group if run.error]
        if errors:
            title += f": {errors[-1]}"
    return Mark(LABELS + left, max(right - left, MIN_MARK), first.how, title)


def _local(moment_s: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(moment_s, zone).strftime("%Y-%m-%d %H:%M:%S")


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
