"""Alerts: five modules that fail every third run, run every second for 10 virtual minutes.

The figure is how many alerts AutoHome queues; the baseline is how many times the modules
flip between failing and working, what an alert per flip (AutoHome before #27 sent two)
would queue. Time is virtual: the tick is stepped by hand, as in test mode.

Run: python benchmarks/alerts.py
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from bench import T0, report, specs, temp_dir
from support.clock import FakeClock

from autohome.app import build
from autohome.config import Config
from autohome.logs.setup import setup_logging

MODULES, SECONDS = 5, 600


def main() -> None:
    folder = temp_dir()
    logs = setup_logging(folder / "logs", "INFO")
    logging.getLogger("autohome").propagate = False
    calls: Counter[str] = Counter()
    outcomes: dict[str, list[bool]] = {}

    def flaky(log: logging.Logger, notify: object) -> None:
        name = log.name.rsplit(".", 1)[1]
        calls[name] += 1
        failing = calls[name] % 3 == 0
        outcomes.setdefault(name, []).append(failing)
        if failing:
            raise RuntimeError("every third run fails")

    clock = FakeClock(T0)
    daemon = build(Config(console_enabled=False, web_enabled=False, tick=timedelta(seconds=1)), clock,
                   specs(MODULES, flaky, interval=timedelta(seconds=1)), logs=logs)
    daemon.registry.load()
    for _ in range(SECONDS):
        daemon.tick(clock.now())
        assert daemon.runner.wait_idle(timeout_s=60)
        clock.advance(1)
    daemon.tick(clock.now())
    daemon.states.flush()
    alerts = sum(1 for row in daemon.outbox.listing(100_000) if row.sender == "autohome")
    flips = sum(sum(1 for a, b in zip(runs, runs[1:], strict=False) if a != b) for runs in outcomes.values())
    report(f"alerts: {MODULES} modules failing every 3rd run, a run a second, {SECONDS} virtual seconds",
           [("alerts queued (vs one per flip)", alerts, flips, "", "-")])
    daemon.shutdown()
    logs.close()


if __name__ == "__main__":
    main()
