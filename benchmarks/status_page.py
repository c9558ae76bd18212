"""Status page render time: 200 modules with 24 h of runs (intervals from 5 min to 1 h, one
run in 20 failing), the main page asked for through the WSGI application itself.

"redrawn" empties every cache of the timeline before each request: what the page costs once
every 3 hours, when the lanes' origin moves on (or at the first look); "a run finished"
stores one new run before each request, so one lane is drawn again; "unchanged" is the page
asked for again with nothing new. The baseline is the console's `modules` table for the
same modules: the same facts, as text.

Run: python benchmarks/status_page.py
"""

from __future__ import annotations

import io
import time
from datetime import timedelta

from bench import T0, percentile, report, specs

from autohome.app import build
from autohome.clock import FakeClock
from autohome.commands import Commands
from autohome.config import Config
from autohome.db import Database, RunRow
from autohome.web.app import StatusPage

MODULES, REQUESTS = 200, 200
INTERVALS = [timedelta(minutes=minutes) for minutes in (5, 10, 15, 30, 60)]


def stored_day(db: Database, names: list[str]) -> int:
    """A day of runs for every module, as the daemon would have stored them."""
    rows = []
    for number, name in enumerate(names):
        every = INTERVALS[number % len(INTERVALS)]
        moment = T0 - timedelta(days=1)
        while moment < T0:
            failed = len(rows) % 20 == 0
            rows.append(RunRow(0, name, moment, moment + timedelta(seconds=1.5), 1.5,
                               "RuntimeError: no network" if failed else None, "error" if failed else "ok"))
            moment += every
    for first in range(0, len(rows), 5000):
        db.add_runs(rows[first:first + 5000], set())
    return len(rows)


def timed(app: StatusPage, path: str, before=lambda: None) -> list[float]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "span=24h",
               "HTTP_HOST": "127.0.0.1:8023", "wsgi.input": io.BytesIO()}
    times = []
    for _ in range(REQUESTS):
        before()
        began = time.perf_counter()
        body = b"".join(app(environ, lambda status, headers: None))
        times.append(time.perf_counter() - began)
        assert b"svg" in body or path != "/"
    return times


def main() -> None:
    db = Database.in_memory()
    modules = specs(MODULES, lambda: None, timedelta(minutes=5))
    runs = stored_day(db, [spec.name for spec in modules])
    daemon = build(Config(console_enabled=False, web_enabled=False), FakeClock(T0), modules, db=db)
    app = StatusPage(daemon.panel, daemon.zone)
    commands = Commands(daemon.panel)

    def forget_all() -> None:
        app.pages._timelines.clear()
        app.pages._lanes.clear()

    finished = iter(range(10**9))

    def one_more_run() -> None:
        number = next(finished)
        moment = T0 - timedelta(seconds=10 + number)
        db.add_runs([RunRow(0, modules[number % MODULES].name, moment, moment, 0.5, None, "ok")], set())
        daemon.states.revision.bump()

    timed(app, "/")  # the first look reads the day's runs
    redrawn = timed(app, "/", before=forget_all)
    one_run = timed(app, "/", before=one_more_run)
    unchanged = timed(app, "/")
    console = []
    for _ in range(REQUESTS):
        commands._modules_cache = None
        began = time.perf_counter()
        commands.execute("modules")
        console.append(time.perf_counter() - began)
    base = percentile(console, 0.5) * 1000
    report(f"status page: {MODULES} modules, {runs} runs in the last 24 h, {REQUESTS} requests", [
        ("redrawn, p50 (ms)", percentile(redrawn, 0.5) * 1000, base, "ms", ""),
        ("redrawn, p99 (ms)", percentile(redrawn, 0.99) * 1000, base, "ms", "< 50 ms"),
        ("a run finished, p50 (ms)", percentile(one_run, 0.5) * 1000, base, "ms", ""),
        ("a run finished, p99 (ms)", percentile(one_run, 0.99) * 1000, base, "ms", "< 50 ms"),
        ("unchanged, p99 (ms)", percentile(unchanged, 0.99) * 1000, base, "ms", "< 50 ms"),
    ])
    daemon.shutdown()


if __name__ == "__main__":
    main()
