"""The runs the timeline may show: read from the read model once, then only the new ones, so
that a page asked for again costs one small query however many runs the day had."""

from __future__ import annotations

import bisect
import threading
from datetime import datetime, tzinfo
from typing import Any

from autohome.web.timeline import SPANS, Run, earliest, make_run

LONGEST = max(SPANS, key=lambda span: SPANS[span])  # runs older than its timeline draws are let go


class RecentRuns:
    """Runs in order of their start, with the number of the newest one read."""

    def __init__(self, controller: Any, zone: tzinfo) -> None:
        self.controller = controller
        self.zone = zone
        self._runs: list[Run] = []
        self._newest_id = 0
        self._since: datetime | None = None  # what is held starts here
        self._lock = threading.Lock()

    def since(self, moment: datetime, now: datetime) -> list[Run]:
        """The stored runs that started at or after `moment`, oldest first."""
        with self._lock:
            if self._since is None or moment < self._since:  # the first look, or a longer span
                self._runs, self._newest_id = [], 0
                self._since = moment
            for number, name, record in self.controller.runs_since(self._since, self._newest_id):
                run = make_run(name, record.started, record.duration_s, record.how, record.error, self.zone)
                bisect.insort(self._runs, run, key=lambda held: held.start_s)
                self._newest_id = max(self._newest_id, number)
            self._forget_before(earliest(now, LONGEST))
            first = bisect.bisect_left(self._runs, moment.timestamp(), key=lambda held: held.start_s)
            return self._runs[first:]

    def _forget_before(self, moment: datetime) -> None:
        if self._since is not None and self._since < moment:
            cut = bisect.bisect_left(self._runs, moment.timestamp(), key=lambda held: held.start_s)
            del self._runs[:cut]
            self._since = moment
