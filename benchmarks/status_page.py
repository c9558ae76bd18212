"""Status page render time and memory, on two histories, the page asked for through the WSGI
application itself:

- a day: 200 modules with 24 h of runs (intervals from 5 min to 1 h, one run in 20 failing),
  the 24 h timeline;
- a week: 50 modules every 30 s for 7 days (about a million runs, one in 20 failing), the
  7 d timeline.

"first look" starts from nothing cached (a new daemon's first request); "redrawn" empties
the drawing's caches before each request (what the page costs when the lanes' origin moves
on); "a run finished" stores one new run before each request; "unchanged" asks again with
nothing new. Memory is the most Python allocated at once while answering (tracemalloc, in a
separate pass so that it does not slow the timed one). The baseline is the console's
`modules` table for the same modules: the same facts, as text.

Run: python benchmarks/status_page.py
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

from bench import T0, percentile, report, specs, temp_dir
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config
from autohome.control.commands import Commands
from autohome.storage.db import Database, RunRow, open_database
from autohome.storage.runs import add_runs
from autohome.web.app import StatusPage

REQUESTS = 100
DAY_INTERVALS = [timedelta(minutes=minutes) for minutes in (5, 10, 15, 30, 60)]


def stored(db: Database, names: list[str], days: int, every: Callable[[int], timedelta]) -> int:
    """Runs for every module over the `days` before T0, as the daemon would have stored them."""
    count, rows = 0, []
    for number, name in enumerate(names):
        moment, step = T0 - timedelta(days=days), every(number)
        while moment < T0:
            failed = count % 20 == 0
            rows.append(RunRow(0, name, moment, moment + timedelta(seconds=1.5), 1.5,
                               "RuntimeError: no network" if failed else None, "error" if failed else "ok"))
            moment += step
            count += 1
            if len(rows) == 20_000:
                add_runs(db, rows, set())
                rows = []
    if rows:
        add_runs(db, rows, set())
    return count


def request(app: StatusPage, span: str) -> int:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": f"span={span}",
               "HTTP_HOST": "127.0.0.1:8023", "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda status, headers: None))
    assert b"svg" in body
    return len(body)


def scenario(title: str, modules: int, days: int, every: Callable[[int], timedelta],
             span: str) -> None:
    db = open_database(temp_dir() / "data")
    module_specs = specs(modules, lambda: None, timedelta(minutes=5))
    runs = stored(db, [spec.name for spec in module_specs], days, every)
    daemon = build(Config(console_enabled=False, web_enabled=False), FakeClock(T0), module_specs, db=db)
    finished = iter(range(10**9))

    def one_more_run() -> None:
        number = next(finished)
        moment = T0 - timedelta(seconds=10 + number)
        add_runs(db, [RunRow(0, module_specs[number % modules].name, moment, moment, 0.5, None, "ok")], set())
        daemon.states.revision.bump()

    def timed(app: StatusPage, before: Callable[[], None] = lambda: None) -> list[float]:
        took = []
        for _ in range(REQUESTS):
            before()
            began = time.perf_counter()
            request(app, span)
            took.append(time.perf_counter() - began)
        return took

    first = []
    for _ in range(5):  # a new page each time: nothing cached
        app = StatusPage(daemon.panel, daemon.zone)
        began = time.perf_counter()
        size = request(app, span)
        first.append(time.perf_counter() - began)

    def forget_drawing() -> None:
        app.pages._timelines.clear()
        app.pages._lanes.clear()

    redrawn = timed(app, forget_drawing)
    one_run = timed(app, one_more_run)
    unchanged = timed(app)
    tracemalloc.start()
    request(StatusPage(daemon.panel, daemon.zone), span)
    _, first_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    for _ in range(20):
        one_more_run()
        request(app, span)
    _, later_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    commands, console = Commands(daemon.panel), []
    for _ in range(REQUESTS):
        commands._modules_cache = None
        began = time.perf_counter()
        commands.execute("modules")
        console.append(time.perf_counter() - began)
    base = percentile(console, 0.5) * 1000
    report(f"status page: {title}: {modules} modules, {runs:,} runs, the {span} timeline, "
           f"{size / 1024:.0f} kB of HTML", [
        ("first look, p50 (ms)", percentile(first, 0.5) * 1000, base, "ms", "well under 1 s"),
        ("redrawn, p99 (ms)", percentile(redrawn, 0.99) * 1000, base, "ms", "< 50 ms"),
        ("a run finished, p99 (ms)", percentile(one_run, 0.99) * 1000, base, "ms", "< 50 ms"),
        ("unchanged, p99 (ms)", percentile(unchanged, 0.99) * 1000, base, "ms", "< 50 ms"),
        ("memory, first look (MB)", first_peak / 1e6, 0, "MB", "bounded"),
        ("memory, a run finished (MB)", later_peak / 1e6, 0, "MB", "bounded"),
    ])
    daemon.shutdown()


def main() -> None:
    scenario("a day", 200, 1, lambda number: DAY_INTERVALS[number % len(DAY_INTERVALS)], "24h")
    scenario("a week", 50, 7, lambda number: timedelta(seconds=30), "7d")


if __name__ == "__main__":
    main()
