"""The console's password back-off: failures counted per source address, a growing wait."""

from __future__ import annotations

import ipaddress
import threading

# After this many failures from one address, each further check waits longer (2 s, 4 s, ... 60 s).
FREE_FAILURES = 3
MAX_PENALTY_S = 60.0
PENALTY_BASE_S = 2.0
MAX_TRACKED_ADDRESSES = 1024


class Penalties:
    """Failed passwords per address; repeated failures earn a growing wait."""

    def __init__(self, base_s: float = PENALTY_BASE_S) -> None:
        self._base_s = base_s
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def failed(self, address: str) -> int:
        """Count a failure; return how many there are now."""
        address = _source(address)
        with self._lock:
            self._failures[address] = self._failures.get(address, 0) + 1
            if len(self._failures) > MAX_TRACKED_ADDRESSES:  # many strangers: forget the oldest
                del self._failures[next(iter(self._failures))]
            return self._failures[address]

    def tracked(self) -> int:
        """How many addresses have failures on record."""
        with self._lock:
            return len(self._failures)

    def succeeded(self, address: str) -> None:
        """Forget an address's failures."""
        with self._lock:
            self._failures.pop(_source(address), None)

    def delay_s(self, address: str) -> float:
        """How long a wrong password from this address waits before it is answered: nothing
        for the first FREE_FAILURES, then 2 s, 4 s, ... up to a minute."""
        with self._lock:
            extra = self._failures.get(_source(address), 0) - FREE_FAILURES - 1
        return 0.0 if extra < 0 else min(self._base_s * 2.0**extra, MAX_PENALTY_S)


def _source(address: str) -> str:
    """Whom a failure counts against: every loopback address (127.0.0.0/8, ::1) is this
    machine, one source, however many of them an attacker binds."""
    try:
        return "this machine" if ipaddress.ip_address(address).is_loopback else address
    except ValueError:
        return address
