"""What the machine offers a run now: the network and mains power, asked cheaply and at
most once a tick, for the modules that NEED them."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

PROBE_TIMEOUT_S = 1.5  # a TCP connect that takes longer than this is not "online" for a run
WHY_NOT = {"network": "offline", "power": "on battery"}


def on_mains_power() -> bool:
    """Whether the machine runs on mains power; one without a battery always does."""
    import psutil  # power, memory: imported by the first module that NEEDS power

    try:
        battery = psutil.sensors_battery()
    except (OSError, AttributeError, NotImplementedError):  # no such sensor on this platform
        return True
    return battery is None or battery.power_plugged is not False


def has_default_route(route_table: Path = Path("/proc/net/route")) -> bool | None:
    """The operating system's hint: False when there is no default route (offline at once,
    without waiting on a timeout), True when there is one, None where it cannot tell."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & 1:  # RTF_UP
            return True
    return False


def connects(address: tuple[str, int], timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `address` is made within the timeout."""
    try:
        socket.create_connection(address, timeout=timeout_s).close()
    except OSError:
        return False
    return True


class Machine:
    """The network and the power as runs see them: asked when a module NEEDS them, and kept
    until `forget()` (each tick), so fifty modules cost one probe."""

    def __init__(self, probe: tuple[str, int] | None = ("1.1.1.1", 443),
                 power: Callable[[], bool] = on_mains_power,
                 route_hint: Callable[[], bool | None] = has_default_route,
                 connect: Callable[[tuple[str, int]], bool] = connects) -> None:
        self.probe = probe
        self._power = power
        self._route_hint = route_hint
        self._connect = connect
        self._known: dict[str, bool] = {}

    def forget(self) -> None:
        """What was known is old: ask again when next needed."""
        self._known.clear()

    def is_online(self) -> bool:
        """Whether the network answers: the route hint, then a short connect to the probe."""
        online = self._known.get("network")
        if online is None:
            online = self._known["network"] = self._probe()
        return online

    def on_mains(self) -> bool:
        """Whether the machine runs on mains power."""
        mains = self._known.get("power")
        if mains is None:
            mains = self._known["power"] = self._power()
        return mains

    def why_not(self, needs: Iterable[str]) -> str:
        """Why a run that NEEDS these cannot start now ("": it can)."""
        for need in needs:
            if not (self.is_online() if need == "network" else self.on_mains()):
                return WHY_NOT[need]
        return ""

    def _probe(self) -> bool:
        if self.probe is None:
            return True
        if not _is_loopback(self.probe[0]) and self._route_hint() is False:
            return False  # no route out: offline now, no timeout to wait
        return self._connect(self.probe)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
