"""AutoHome's own life, kept cheaply in the state database: when it started, that it was
alive (once a minute, with a tick's writes), and a clean stop. At the next start it says
whether the last run ended cleanly or not, and since when."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from autohome.storage.db import Database, StorageFailure, as_text, as_time

BEAT = timedelta(minutes=1)  # how often "alive" is written: the precision of an unclean stop's time


class LastLife(NamedTuple):
    """What the previous run of AutoHome left: when it started, was last alive, stopped cleanly."""

    started: datetime | None
    alive: datetime | None
    stopped: datetime | None  # None: no clean stop (a crash, kill -9, a power loss)


class LifeLog:
    """The `life.*` values of the meta table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._last_beat: datetime | None = None

    def previous(self) -> LastLife:
        """What the previous run left (all None at the first start)."""
        values = [as_time(self.db.get_meta(f"life.{key}")) for key in ("started", "alive", "stopped")]
        return LastLife(*values)

    def begin(self, now: datetime) -> None:
        """This run starts: alive now, not stopped."""
        self._write({"started": now, "alive": now, "stopped": None})
        self._last_beat = now

    def beat(self, now: datetime) -> None:
        """Alive at `now` (written at most once a BEAT)."""
        if self._last_beat is None or now - self._last_beat >= BEAT or now < self._last_beat:
            self._write({"alive": now})
            self._last_beat = now

    def end(self, now: datetime) -> None:
        """A clean stop."""
        self._write({"alive": now, "stopped": now})

    def _write(self, values: dict[str, datetime | None]) -> None:
        try:
            for key, value in values.items():
                self.db.set_meta(f"life.{key}", as_text(value))
        except (StorageFailure, OSError):
            pass  # a full disk: the next beat tries again; the disk trouble is said elsewhere
