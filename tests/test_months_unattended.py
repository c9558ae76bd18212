"""Months unattended: the log folder and the database stay within their bounds."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

from support.clock import T0, FakeClock
from support.modules import write_module
from support.processes import clean_env, run_autohome
from support.pushover import FakePushover

from autohome.app import build
from autohome.config import Config
from autohome.logs.archive import archives
from autohome.logs.tree import get_logger
from autohome.notifications.pushover import PushoverClient


def test_a_chatty_module_cannot_fill_the_disk_and_no_line_is_lost(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "chatty", '''
        INTERVAL = 30
        def run(log, notify, store):
            start = store.get("next", 0)
            for number in range(start, start + 100):
                log.info("line %06d %s", number, "x" * 60)
            store.set("next", start + 100)
    ''')
    env = clean_env(AUTOHOME_LOG_MAX_MB="0.1", AUTOHOME_LOG_KEEP="3")
    result = run_autohome(tmp_path, "-t", "--no-console", stdin="150\n", env=env, timeout_s=120)
    assert result.returncode == 0, result.stderr[-2000:]
    logs = tmp_path / "logs"
    kept = archives(logs, "test.log")
    assert len(kept) == 3  # 151 runs x 100 lines were written: far more than 4 files hold
    files = [*kept, logs / "test.log"]
    limit = 0.1 * 1024 * 1024
    assert all(path.stat().st_size < limit + 1000 for path in files)
    # The newest lines are all there, in order, across the archive boundaries.
    numbers = [int(n) for path in files for n in re.findall(r"line (\d{6})", path.read_text())]
    assert numbers == list(range(numbers[0], 151 * 100))
    assert len(numbers) > 3 * 100  # three full archives and the current file
    with sqlite3.connect(tmp_path / "data" / "autohome-test.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 151  # a week is kept (test_db)


def test_sent_notifications_older_than_30_days_are_pruned(pushover: FakePushover) -> None:
    clock = FakeClock(T0)
    client = PushoverClient("a" * 30, "u" * 30, pushover.url)
    main = build(Config(console_enabled=False, web_enabled=False), clock, [], client=client)
    notify = main.notifier.for_module(get_logger("autohome.modules.test"))
    notify("old news")
    main.outbox.deliver_due(clock.now())
    assert main.outbox.prune_if_due(clock.now()) == clock.now() + timedelta(days=1)
    clock.advance(timedelta(days=31).total_seconds())
    notify("fresh")
    main.outbox.deliver_due(clock.now())
    main.outbox.prune_if_due(clock.now())
    assert [row.fields["message"] for row in main.outbox.listing(10)] == ["fresh"]
    main.shutdown()
