"""The timeline and the durations chart as SVG text, written directly rather than through a
template: a day of runs is thousands of marks, and this is where the page's time goes.
Every text that comes from a module (names, errors) is escaped here."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from autohome.control.views import GAP_KINDS
from autohome.web.timeline import LABELS, LANE, Timeline

CHART_WIDTH, CHART_HEIGHT = 600, 120
AXIS_LABEL_HALF = 40  # half the width of the widest axis label ("Mon 05", "23:00") and room to spare


def timeline_svg(timeline: Timeline, kept: dict[tuple[object, ...], str]) -> Markup:
    """The timeline: lanes, marks with their titles (shown on hover and focus), sleeps, axis.
    `kept` holds the lanes' marks as drawn before, by their key; it is brought up to date."""
    height = timeline.height
    lanes_bottom = height - 20
    parts = [f'<svg class="timeline" viewBox="0 0 {timeline.width} {height}" role="img" '
             f'aria-label="runs of the last {escape(timeline.span)}">'
             f'<clipPath id="lanes"><rect x="{LABELS}" y="0" width="{timeline.width - LABELS}" '
             f'height="{lanes_bottom}"/></clipPath>']
    for x, width, kind in timeline.sleeps:
        parts.append(f'<rect class="gap {kind}" x="{x:.1f}" y="0" width="{width:.1f}" '
                     f'height="{lanes_bottom}">'
                     f'<title>{escape(GAP_KINDS.get(kind, kind))}: no ticks</title></rect>')
    for x, label in timeline.axis:
        # Centred on its line; near the right edge it ends there, so it is never cut.
        anchor = "end" if x > timeline.width - AXIS_LABEL_HALF else "middle"
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{lanes_bottom}"/>'
                     f'<text class="axis" x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">'
                     f'{escape(label)}</text>')
    for lane in timeline.lanes:
        middle = lane.y + LANE // 2
        parts.append(f'<text class="lane-name" x="4" y="{middle + 4}">{escape(lane.name)}</text>'
                     f'<line class="lane" x1="{LABELS}" x2="{timeline.width}" y1="{middle}" y2="{middle}"/>')
    parts.append(f'<g clip-path="url(#lanes)"><g transform="translate({-timeline.shift:.1f} 0)">')
    drawn = {}
    for lane in timeline.lanes:
        marks = kept.get(lane.key) if lane.marks is None else None
        if marks is None:
            top = lane.y + 3
            marks = "".join(
                f'<rect class="mark {mark.kind}" x="{mark.x:.1f}" y="{top}" width="{mark.width:.1f}" '
                f'height="{LANE - 6}" tabindex="0"><title>{mark.title}</title></rect>'
                for mark in lane.marks or ())
        drawn[lane.key] = marks
        parts.append(marks)
    kept.clear()
    kept.update(drawn)  # only the lanes of this drawing are kept
    parts.append("</g></g>")
    parts.append(f'<line class="now" x1="{timeline.now_x:.1f}" x2="{timeline.now_x:.1f}" y1="0" '
                 f'y2="{lanes_bottom}"><title>now</title></line>')
    if not timeline.lanes:
        parts.append(f'<text class="axis" x="{LABELS}" y="14">no modules</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def durations_svg(durations: Sequence[tuple[str, float, str]]) -> Markup:
    """A bar per run (oldest left): its duration, coloured by how it ended, titled."""
    if not durations:
        return Markup('<p class="quiet">no runs yet</p>')
    longest = max(seconds for _, seconds, _ in durations) or 1.0
    step = CHART_WIDTH / len(durations)
    parts = [f'<svg class="durations" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT + 16}" role="img" '
             f'aria-label="durations of the last {len(durations)} runs">']
    for number, (title, seconds, how) in enumerate(durations):
        bar = max(1.0, seconds / longest * CHART_HEIGHT)
        parts.append(f'<rect class="mark {escape(how)}" x="{number * step + 1:.1f}" '
                     f'y="{CHART_HEIGHT - bar:.1f}" '
                     f'width="{max(step - 2, 1):.1f}" height="{bar:.1f}" tabindex="0">'
                     f'<title>{escape(title)}</title></rect>')
    parts.append(f'<text class="axis" x="0" y="{CHART_HEIGHT + 13}">longest {longest:.2f}s</text></svg>')
    return Markup("".join(parts))
