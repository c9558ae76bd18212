"""Warn when a watched disk runs low on free space, and again when it recovers.

Turn it on in .env:  AUTOHOME_DISK_PATHS=/,/home   (comma-separated folders)
Optional:            AUTOHOME_DISK_MIN_FREE_PERCENT=10
"""

import shutil

INTERVAL = "10m"
REQUIRES = ["AUTOHOME_DISK_PATHS"]


def run(log, notify, store, config):
    threshold = _percent(config.get("AUTOHOME_DISK_MIN_FREE_PERCENT", "10"))
    for path in (p.strip() for p in config["AUTOHOME_DISK_PATHS"].split(",") if p.strip()):
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            log.error("cannot read free space of %s: %s (check AUTOHOME_DISK_PATHS)", path, exc)
            continue
        free_percent = 100 * usage.free / usage.total
        was_low = store.get(f"low:{path}", False)
        is_low = free_percent < threshold
        log.info("%s: %.1f%% free (warn under %g%%)", path, free_percent, threshold)
        if is_low and not was_low:
            notify(f"{path} has only {free_percent:.1f}% free ({usage.free // 2**20} MB)",
                   title="Disk nearly full")
        elif was_low and not is_low:
            notify(f"{path} has {free_percent:.1f}% free again", title="Disk space recovered")
        store.set(f"low:{path}", is_low)


def _percent(text):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"AUTOHOME_DISK_MIN_FREE_PERCENT={text!r} is not a number such as 10") from None
    if not 0 <= value <= 100:
        raise ValueError(f"AUTOHOME_DISK_MIN_FREE_PERCENT={text!r} must be between 0 and 100")
    return value
