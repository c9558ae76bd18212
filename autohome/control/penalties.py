"""The console's password back-off: failures counted per source address, a growing wait."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable

from autohome.clock import monotonic_s

# After this many failures from one address, each further check waits longer (2 s, 4 s, ... 60 s).
FREE_FAILURES = 3
MAX_PENALTY_S = 60.0
PENALTY_BASE_S = 2.0
MAX_TRACKED_ADDRESSES = 1024


class Penalties:
    """Failed passwords per address; repeated failures earn a growing wait. The console makes
    the guessing connection wait it out (`delay_s`); the status page answers at once, and
    refuses to look at a password until it is over (`left_s`), so a guesser holds no thread."""

    def __init__(self, base_s: float = PENALTY_BASE_S, monotonic: Callable[[], float] = monotonic_s) -> None:
        self._base_s = base_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}  # no password is looked at from there before this

    def failed(self, address: str) -> int:
        """Count a failure; return how many there are now."""
        address = _source(address)
        with self._lock:
            self._failures[address] = self._failures.get(address, 0) + 1
            if len(self._failures) > MAX_TRACKED_ADDRESSES:  # many strangers: forget the oldest
                forgotten = next(iter(self._failures))
                del self._failures[forgotten]
                self._until.pop(forgotten, None)
            count = self._failures[address]
        delay_s = self.delay_s(address)
        if delay_s:
            with self._lock:
                self._until[address] = self._monotonic() + delay_s
        return count

    def left_s(self, address: str) -> float:
        """How long until a password from this address is looked at again (0: now)."""
        with self._lock:
            until = self._until.get(_source(address))
        return 0.0 if until is None else max(0.0, until - self._monotonic())

    def tracked(self) -> int:
        """How many addresses have failures on record."""
        with self._lock:
            return len(self._failures)

    def succeeded(self, address: str) -> None:
        """Forget an address's failures."""
        with self._lock:
            self._failures.pop(_source(address), None)
            self._until.pop(_source(address), None)

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
