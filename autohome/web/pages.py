"""The status page's pages, rendered from the read model with Jinja2 (autoescaping on)."""

from __future__ import annotations

import threading
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from autohome import __version__
from autohome.control.commands import STORE_VALUE_CHARS
from autohome.control.views import (
    Controller,
    ModuleState,
    ModuleView,
    StatusView,
    channel_waiting,
    format_time,
    outcome_text,
    quota_text,
)
from autohome.durations import format_duration
from autohome.text import shorten
from autohome.web.recent import RUN_SPANS, RecentBuckets, RecentRuns
from autohome.web.svg import durations_svg, timeline_svg
from autohome.web.timeline import SPANS, WIDTH, build_timeline, earliest, make_run

if TYPE_CHECKING:
    from markupsafe import Markup  # with Jinja2, imported at the first request

TEMPLATES = Path(__file__).parent / "templates"
LOG_ENTRIES = 40
NOTIFICATIONS = 20


class LastRun(NamedTuple):
    time: str
    duration: str
    how: str
    text: str


class Row(NamedTuple):
    """One module's row in the table (attributes: Jinja reads them fastest)."""

    name: str
    state: str
    schedule: str
    runs_in: str
    last: LastRun | None
    next: str
    why: str  # why it is off or broken
    paused: bool
    running: bool


class Pages:
    """Renders each page; the timeline's SVG is kept while nothing it shows has changed."""

    def __init__(self, controller: Controller, zone: tzinfo) -> None:
        self.controller = controller
        self.zone = zone
        self._env: Any = None
        self._lock = threading.Lock()
        self._timelines: dict[str, tuple[tuple[object, ...], Markup]] = {}
        self._recent = RecentRuns(controller, zone)  # the hour, from runs
        self._buckets = {span: RecentBuckets(controller, span)  # the day and the week, from buckets
                         for span in SPANS if span not in RUN_SPANS}
        self._lanes: dict[str, dict[tuple[object, ...], str]] = {}  # each span's lanes, as drawn

    @property
    def env(self) -> Any:
        """The templates, loaded at the first request: Jinja2 is not imported before the
        console listens, nor in a daemon whose page nobody opens."""
        if self._env is None:
            from jinja2 import Environment, FileSystemLoader

            env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                              lstrip_blocks=True)
            env.filters["time"] = lambda moment: format_time(moment, self.zone)
            env.filters["duration"] = format_duration
            env.globals["version"] = __version__
            self._env = env
        return self._env

    def index(self, span: str, token: str) -> str:
        """The main page: header, modules, timeline, notifications, log tail."""
        return self.env.get_template("index.html").render(
            **self._live(span, token), entries=self.controller.log_tail(LOG_ENTRIES))

    def live(self, span: str, token: str) -> str:
        """The part of the main page that the script refreshes."""
        return self.env.get_template("_live.html").render(**self._live(span, token))

    def log_tail(self) -> str:
        """The log's last entries, refreshed by the script."""
        return self.env.get_template("_log.html").render(entries=self.controller.log_tail(LOG_ENTRIES))

    def login(self, error: str) -> str:
        """The password form."""
        return self.env.get_template("login.html").render(error=error)

    def module(self, name: str, token: str) -> str | None:
        """One module: its runs with a durations chart, log lines, output and store keys."""
        view = next((view for view in self.controller.module_views() if view.name == name), None)
        if view is None:
            return None
        history = self.controller.history(name, 50)
        bars = [(f"{format_time(run.started, self.zone)}, {run.duration_s:.2f}s, {outcome_text(run, 200)}",
                 run.duration_s, run.how) for run in reversed(history)]
        return self.env.get_template("module.html").render(
            view=view, row=self._row(view), token=token, history=history, chart=durations_svg(bars),
            outcome=outcome_text, lines=self.controller.recent_lines(name, 30),
            output=self.controller.last_output(name, 30),
            store=[(key, shorten(value, STORE_VALUE_CHARS))
                   for key, value in self.controller.store_items(name)],
            status=self.controller.status())

    def _live(self, span: str, token: str) -> dict[str, Any]:
        span = span if span in SPANS else "24h"
        status = self.controller.status()
        views = self.controller.module_views()
        return {
            "span": span, "spans": list(SPANS), "token": token, "status": status,
            "header": self._header(status), "rows": [self._row(view) for view in views],
            "timeline": self._timeline(span, views, status.now),
            "notifications": self.controller.notifications(NOTIFICATIONS),
        }

    def _header(self, status: StatusView) -> list[tuple[str, str]]:
        uptime = format_duration(status.now - status.started_at) if status.now > status.started_at else "0s"
        quota = quota_text(status)
        return [
            ("version", __version__), ("uptime", uptime),
            ("next tick", format_time(status.next_tick, self.zone)[11:] if status.next_tick else "-"),
            ("threads", f"{status.running} of {status.max_threads}"), ("backlog", str(status.queued)),
            ("notifications waiting", _waiting(status.outbox, status.channels, status.retrying)),
            ("Pushover quota", quota),
        ]

    def _row(self, view: ModuleView) -> Row:
        last = view.status.last_run
        quiet = view.state in (ModuleState.PAUSED, ModuleState.OFF, ModuleState.BROKEN)
        return Row(
            view.name, view.state, view.schedule,
            "-" if view.state is ModuleState.BROKEN else ("process" if view.isolated else "thread"),
            None if last is None else LastRun(format_time(last.started, self.zone), f"{last.duration_s:.2f}s",
                                              last.how, outcome_text(last, 80)),
            view.state if quiet else format_time(view.next_run, self.zone),
            view.problem if view.state in (ModuleState.OFF, ModuleState.BROKEN) else "",
            view.status.paused, view.state in (ModuleState.RUNNING, ModuleState.OVERRUN),
        )

    def _timeline(self, span: str, views: list[ModuleView], now: datetime) -> Markup:
        pixel_s = SPANS[span].total_seconds() / WIDTH
        running = tuple(sorted((view.name, view.running_since) for view in views
                               if view.running_since is not None))
        sleeps = self.controller.sleeps()
        key = (self.controller.views_version(), int(now.timestamp() // pixel_s), running,
               tuple(view.name for view in views), len(sleeps))
        with self._lock:
            cached = self._timelines.get(span)
        if cached is not None and cached[0] == key:
            return cached[1]
        source = self._recent if span in RUN_SPANS else self._buckets[span]
        runs = source.since(earliest(now, span), now)
        going = [make_run(view.name, since, max((now - since).total_seconds(), 0.0),
                          "overrun" if view.state is ModuleState.OVERRUN else "running", None, self.zone)
                 for view in views if (since := view.running_since) is not None]
        if going:  # (each at the end of its lane: it started after every stored run of it)
            runs = {**runs, **{run.module: [*runs.get(run.module, []), run] for run in going}}
        with self._lock:
            kept = self._lanes.setdefault(span, {})
            svg = timeline_svg(build_timeline([view.name for view in views], runs, sleeps, now, span,
                                              self.zone, kept), kept)
        with self._lock:
            self._timelines[span] = (key, svg)
        return svg


def _waiting(outbox: dict[str, int], channels: dict[str, int], retrying: dict[str, str]) -> str:
    """The notifications not sent yet: those to send (per channel, and why a channel's wait
    for a retry), and those kept for want of a channel."""
    pending = outbox.get("pending", 0) + outbox.get("sending", 0)  # one on its way is not sent yet
    kept = outbox.get("undeliverable", 0)
    if kept:
        return f"{pending + kept} ({kept} kept until a channel is set up)"
    each = "; " if retrying else ", "
    listed = each.join(channel_waiting(name, count, retrying) for name, count in channels.items())
    return f"{pending} ({listed})" if listed else str(pending)

