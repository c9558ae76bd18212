"""Log the system load every five minutes, and warn when it stays far above the core count."""

import os

INTERVAL = "5m"


def run(log, notify):
    if not hasattr(os, "getloadavg"):
        log.info("load average is not available on this platform")
        return
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count() or 1
    log.info("load %.2f %.2f %.2f on %d cores", one, five, fifteen, cores)
    if fifteen > 2 * cores:
        notify(f"Load has been {fifteen:.1f} for 15 minutes on {cores} cores", title="Busy machine")
