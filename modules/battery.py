"""Warn when the battery runs low and is not charging (where the machine has one).

Turn it on in .env:  AUTOHOME_BATTERY_MIN_PERCENT=15
"""

import psutil

INTERVAL = "2m"
REQUIRES = ["AUTOHOME_BATTERY_MIN_PERCENT"]


def run(log, notify, store, config):
    threshold = float(config["AUTOHOME_BATTERY_MIN_PERCENT"])
    battery = psutil.sensors_battery()  # Linux, macOS and Windows alike; None without a battery
    if battery is None:
        log.info("no battery reported on this machine")
        return
    percent, charging = round(battery.percent), battery.power_plugged is not False
    log.info("battery at %d%%, %s", percent, "charging" if charging else "not charging")
    is_low = percent < threshold and not charging
    if is_low and not store.get("warned", False):
        notify(f"Battery at {percent}% and not charging", title="Battery low", priority=1)
    store.set("warned", is_low)
