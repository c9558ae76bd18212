"""When the laptop slept while AutoHome ran, kept in the state database so the status page's
timeline shows the gaps after a restart too."""

from __future__ import annotations

from datetime import datetime, timedelta

from autohome.storage.db import Database, as_text, as_time

KEEP = timedelta(days=9)  # the timeline's week, and its lanes' origin before it


class SleepLog:
    """The `sleeps` table: (asleep, awake) pairs, the old ones pruned as new ones come."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, asleep: datetime, awake: datetime) -> None:
        """Remember one gap; forget those older than KEEP."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO sleeps (asleep, awake) VALUES (?, ?)",
                         (as_text(asleep), as_text(awake)))
            conn.execute("DELETE FROM sleeps WHERE awake < ?", (as_text(awake - KEEP),))

    def since(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        """The gaps that ended at or after `moment`, oldest first."""
        rows = self.db.query("SELECT asleep, awake FROM sleeps WHERE awake >= ? ORDER BY asleep",
                             (as_text(moment),))
        return [(as_time(asleep), as_time(awake)) for asleep, awake in rows]  # type: ignore[misc]
