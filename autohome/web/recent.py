"""The runs the timeline may show, by module: read from the read model once, then only the
new ones, so that a page asked for again costs one small query however many runs there were.

The hour is drawn from runs (RecentRuns: an hour of them is held); the day and the week
from the database's buckets (RecentBuckets: what is held and drawn follows the width, not
how many runs there were: a week of a million runs is some thousands of buckets).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from datetime import datetime, tzinfo

from autohome.control.views import BUCKET_S, Controller
from autohome.web.timeline import MERGE_PX, SPANS, WIDTH, Run, earliest, make_bucket, make_run

RUN_SPANS = ("1h",)  # drawn from runs; the longer ones from buckets


class RecentRuns:
    """An hour of runs in order of their start, with the number of the newest one read."""

    def __init__(self, controller: Controller, zone: tzinfo, span: str = "1h") -> None:
        self.controller = controller
        self.zone = zone
        self.span = span
        self._runs: list[Run] = []
        self._newest_id = 0
        self._since: datetime | None = None  # what is held starts here
        self._lock = threading.Lock()

    def since(self, moment: datetime, now: datetime) -> Mapping[str, list[Run]]:
        """The stored runs that started at or after `moment`, by module, oldest first."""
        with self._lock:
            if self._since is None or moment < self._since:  # the first look
                self._runs, self._newest_id = [], 0
                self._since = moment
            for number, name, record in self.controller.runs_since(self._since, self._newest_id):
                run = make_run(name, record.started, record.duration_s, record.how, record.error, self.zone)
                bisect.insort(self._runs, run, key=lambda held: held.start_s)
                self._newest_id = max(self._newest_id, number)
            cut_at = earliest(now, self.span)
            if self._since < cut_at:
                del self._runs[:_first_from(self._runs, cut_at)]
                self._since = cut_at
            first = _first_from(self._runs, moment)
            by_module: dict[str, list[Run]] = {}
            for run in self._runs[first:]:
                by_module.setdefault(run.module, []).append(run)
            return by_module


class RecentBuckets:
    """The buckets of one span's timeline, by module, brought up to date with the buckets that
    took a run since the last look; each module's list is sorted again only when it changed."""

    def __init__(self, controller: Controller, span: str) -> None:
        self.controller = controller
        self.span = span
        # Buckets taken together so that each is about as wide as the merging of marks (a
        # week: hours): as many as are drawn apart, not more.
        self.per = max(1, int(SPANS[span].total_seconds() / WIDTH * MERGE_PX / 2 // BUCKET_S))
        self._held: dict[str, dict[tuple[int, str], Run]] = {}  # module -> (bucket, how) -> run
        self._sorted: dict[str, list[Run]] = {}
        self._newest_id = 0
        self._oldest_bucket = 0
        self._lock = threading.Lock()

    def since(self, moment: datetime, now: datetime) -> Mapping[str, list[Run]]:
        """The buckets from `moment`'s on, by module, in order of their start."""
        with self._lock:
            changed = set()
            for row in self.controller.run_buckets(moment, self._newest_id, self.per):
                run = make_bucket(row.module, row.first_s, row.last_s, row.runs, row.longest_s, row.how,
                                  row.error)
                self._held.setdefault(row.module, {})[(row.bucket, row.how)] = run
                self._newest_id = max(self._newest_id, row.last_id)
                changed.add(row.module)
            oldest = int(earliest(now, self.span).timestamp()) // BUCKET_S - 1
            if oldest > self._oldest_bucket:  # the span moved on: let go of what it no longer draws
                self._oldest_bucket = oldest
                for module, buckets in self._held.items():
                    gone = [key for key in buckets if key[0] < oldest]
                    for key in gone:
                        del buckets[key]
                    if gone:
                        changed.add(module)
            for module in changed:
                self._sorted[module] = sorted(self._held[module].values(), key=lambda run: run.start_s)
            return self._sorted


def _first_from(runs: list[Run], moment: datetime) -> int:
    return bisect.bisect_left(runs, moment.timestamp(), key=lambda held: held.start_s)
