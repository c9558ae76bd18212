"""Reading and writing durations such as "90s", "5m", "2h", "1d" or "1h30m", sizes such as
"512M", and stretches of the day such as "22:00-07:00" (BETWEEN, quiet hours)."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import NamedTuple

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Compiled on first use (re caches them).
_PART = r"(?i)(\d+(?:\.\d+)?)\s*([smhd])"
_WHOLE = r"(?i)^(?:\s*\d+(?:\.\d+)?\s*[smhd]\s*)+$"
CLOCK_TIME = r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\s*$"

MAX_DURATION = timedelta(days=3650)  # ten years: anything longer never comes round
DURATION_HELP = 'seconds as a number, or a duration such as "90s", "5m", "2h", "1d", "1h30m"'


def parse_duration(value: object) -> timedelta:
    """Turn a number of seconds or a duration string into a positive timedelta.

    Raises ValueError with a message fit to show the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: use {DURATION_HELP}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not re.match(_WHOLE, text):
                raise ValueError(f"{value!r} is not a duration: use {DURATION_HELP}") from None
            seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in re.findall(_PART, text))
    else:
        raise ValueError(f"{value!r} is not a duration: use {DURATION_HELP}")
    if not seconds > 0:  # also NaN
        raise ValueError(f"{value!r} is not a positive duration: use {DURATION_HELP}")
    if seconds > MAX_DURATION.total_seconds():  # also inf; timedelta itself overflows near 2.7e6 years
        raise ValueError(f"{value!r} is longer than {MAX_DURATION.days // 365} years: use {DURATION_HELP}")
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """Write a timedelta the way a person would type it: 90s, 5m, 1h30m, 1d."""
    total = span.total_seconds()
    if total < 60 and total != int(total):
        return f"{total:.1f}s"
    seconds = int(round(total))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_SIZE = r"(?i)(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?"
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
SIZE_HELP = 'a size such as "512M", "1G" or a number of bytes'


def parse_size(value: object) -> int:
    """A number of bytes, or a size such as "512M", "1.5G", "200MB" (powers of 1024), as bytes.

    Raises ValueError with a message fit to show the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size: use {SIZE_HELP}")
    if isinstance(value, int | float):
        size = float(value)
    else:
        found = re.fullmatch(_SIZE, str(value).strip())
        if found is None:
            raise ValueError(f"{value!r} is not a size: use {SIZE_HELP}")
        size = float(found.group(1)) * _UNITS[found.group(2).lower()]
    if not 1024 * 1024 <= size < 1024**5:
        raise ValueError(f"{value!r} is not a size from 1M to 1024T: use {SIZE_HELP}")
    return int(size)


class Window(NamedTuple):
    """A stretch of the day, local time; it may run past midnight (22:00-06:00)."""

    start: time
    end: time

    def holds(self, moment: time) -> bool:
        """Whether the local time of day lies in it (its end excluded)."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def describe(self) -> str:
        """'08:00-22:00'."""
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_between(value: object) -> tuple[Window, ...]:
    """BETWEEN = "08:00-22:00", or a list of them; raise ValueError saying what is allowed."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f'{value!r} is not allowed: use BETWEEN = "08:00-22:00", or a list of them')
    windows = []
    for item in items:
        parts = item.split("-") if isinstance(item, str) else []
        found = [re.match(CLOCK_TIME, part) for part in parts] if len(parts) == 2 else []
        if len(found) != 2 or not all(found):
            raise ValueError(f"{item!r} is not a stretch of the day: use two 24-hour times, such as "
                             '"08:00-22:00" (or "22:00-06:00", across midnight)')
        start, end = (time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) for m in found if m)
        if start == end:
            raise ValueError(f"{item!r} is empty: its start and end are the same time")
        windows.append(Window(start, end))
    return tuple(windows)
