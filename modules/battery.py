"""Warn when the battery runs low and is not charging (where the platform reports it).

Turn it on in .env:  AUTOHOME_BATTERY_MIN_PERCENT=15
"""

import ctypes
import re
import subprocess
import sys
from pathlib import Path

INTERVAL = "2m"
REQUIRES = ["AUTOHOME_BATTERY_MIN_PERCENT"]


def run(log, notify, store, config):
    threshold = float(config["AUTOHOME_BATTERY_MIN_PERCENT"])
    reading = read_battery(Path(config.get("AUTOHOME_BATTERY_DIR", "/sys/class/power_supply")))
    if reading is None:
        log.info("no battery reported on this machine")
        return
    percent, charging = reading
    log.info("battery at %d%%, %s", percent, "charging" if charging else "not charging")
    is_low = percent < threshold and not charging
    if is_low and not store.get("warned", False):
        notify(f"Battery at {percent}% and not charging", title="Battery low", priority=1)
    store.set("warned", is_low)


def read_battery(sysfs):
    """(percent, charging) or None, from Linux sysfs, macOS pmset or Windows."""
    if sys.platform == "darwin":
        return _from_pmset()
    if sys.platform == "win32":
        return _from_windows()
    for battery in sorted(sysfs.glob("BAT*")):
        try:
            percent = int((battery / "capacity").read_text().strip())
            status = (battery / "status").read_text().strip()
        except (OSError, ValueError):
            continue
        return percent, status in ("Charging", "Full")
    return None


def _from_pmset():
    out = subprocess.run(["pmset", "-g", "batt"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"(\d+)%;\s*([\w ]+);", out)
    if not found:
        return None
    return int(found.group(1)), found.group(2).strip() in ("charging", "charged", "finishing charge")


def _from_windows():
    class Status(ctypes.Structure):
        _fields_ = [("ACLineStatus", ctypes.c_byte), ("BatteryFlag", ctypes.c_byte),
                    ("BatteryLifePercent", ctypes.c_byte), ("SystemStatusFlag", ctypes.c_byte),
                    ("BatteryLifeTime", ctypes.c_ulong), ("BatteryFullLifeTime", ctypes.c_ulong)]

    status = Status()
    if not ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(status)):
        return None
    if status.BatteryFlag & 128 or status.BatteryLifePercent == -1:  # no battery
        return None
    return int(status.BatteryLifePercent), status.ACLineStatus == 1
