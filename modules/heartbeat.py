"""Log a heartbeat every minute, so current.log shows AutoHome is alive."""

import os

INTERVAL = "1m"


def run(log, notify):
    log.info("alive, pid %d", os.getpid())
