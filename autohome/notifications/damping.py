"""What keeps notifications bearable: quiet hours, an hourly limit per module, and the same
text sent once with a count.

Both act when a message is queued, so the outbox never holds what would only be thrown away.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import NamedTuple

from autohome.durations import Window, parse_between

HOUR = timedelta(hours=1)
REPEAT_WINDOW = timedelta(minutes=10)


class QuietHours:
    """AUTOHOME_QUIET_HOURS: messages of priority 0 and below wait for its end."""

    def __init__(self, text: str, zone: tzinfo) -> None:
        self.windows: tuple[Window, ...] = parse_between([part.strip() for part in text.split(",")])
        self.zone = zone

    def release(self, now: datetime) -> datetime | None:
        """The end of the quiet hours `now` lies in (None: not quiet now)."""
        local = now.astimezone(self.zone)
        if not any(window.holds(local.time()) for window in self.windows):
            return None
        moment = now
        while any(window.holds(moment.astimezone(self.zone).time()) for window in self.windows):
            ends = []
            for window in self.windows:
                day = moment.astimezone(self.zone).date()
                for offset in (0, 1):
                    end = datetime.combine(day + timedelta(days=offset), window.end, tzinfo=self.zone)
                    if end > moment:
                        ends.append(end)
            moment = min(ends)
        return moment

    def describe(self) -> str:
        """'22:00-07:00'."""
        return ", ".join(window.describe() for window in self.windows)


class Folded(NamedTuple):
    """A message made of messages that were not sent one by one."""

    sender: str
    text: str


class _Hour:
    __slots__ = ("began", "sent", "folded", "last")

    def __init__(self, began: datetime) -> None:
        self.began, self.sent, self.folded, self.last = began, 0, 0, ""


class _Repeat:
    __slots__ = ("began", "count")

    def __init__(self, began: datetime) -> None:
        self.began, self.count = began, 0


class Floodgate:
    """At most `max_per_hour` messages per module per hour, the rest folded into one summary
    at the hour's end; the same text within 10 minutes sent once, then once with a count."""

    def __init__(self, max_per_hour: int) -> None:
        self.max_per_hour = max_per_hour
        self._hours: dict[str, _Hour] = {}
        self._repeats: dict[tuple[str, str], _Repeat] = {}

    def admit(self, sender: str, text: str, now: datetime) -> bool:
        """Whether to queue this message now (False: it is folded into a later summary)."""
        repeat = self._repeats.get((sender, text))
        if repeat is not None and now - repeat.began < REPEAT_WINDOW:
            repeat.count += 1
            return False
        self._repeats[(sender, text)] = _Repeat(now)
        hour = self._hours.get(sender)
        if hour is None or now - hour.began >= HOUR:
            hour = self._hours[sender] = _Hour(now)
        if hour.sent < self.max_per_hour:
            hour.sent += 1
            return True
        hour.folded += 1
        hour.last = text
        return False

    def due(self, now: datetime) -> list[Folded]:
        """The summaries whose hour, or ten minutes, are over (called at each tick)."""
        folded = []
        for (sender, text), repeat in list(self._repeats.items()):
            if now - repeat.began >= REPEAT_WINDOW:
                del self._repeats[(sender, text)]
                if repeat.count:
                    folded.append(Folded(sender, f"{text} (sent {repeat.count + 1} times in 10 minutes)"))
        for sender, hour in list(self._hours.items()):
            if now - hour.began >= HOUR:
                del self._hours[sender]
                if hour.folded:
                    plural = "s" if hour.folded > 1 else ""
                    folded.append(Folded(sender, f"{sender}: {hour.folded} more notification{plural} "
                                                 f"this hour, the last: {hour.last}"))
        return folded
