"""Warn on the phone when the disk holding your home folder is nearly full."""

import shutil
from pathlib import Path

INTERVAL = "15m"
MIN_FREE_PERCENT = 5


def run(log, notify):
    usage = shutil.disk_usage(Path.home())
    free_percent = 100 * usage.free / usage.total
    log.info("%.1f%% free on the disk holding %s", free_percent, Path.home())
    if free_percent < MIN_FREE_PERCENT:
        notify(f"Only {free_percent:.1f}% disk space left", title="Disk nearly full")
