"""The gaps in AutoHome's watch, kept in the state database so the status page's timeline
shows them after a restart too: the laptop asleep, AutoHome stopped cleanly, or stopped
without a clean stop (a crash, kill -9, a power loss)."""

from __future__ import annotations

from datetime import datetime, timedelta

from autohome.storage.db import Database, as_text, as_time

KEEP = timedelta(days=9)  # the timeline's week, and its lanes' origin before it


class SleepLog:
    """The `sleeps` table: (from, to, kind) gaps, the old ones pruned as new ones come."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, asleep: datetime, awake: datetime, kind: str = "asleep") -> None:
        """Remember one gap; forget those older than KEEP."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO sleeps (asleep, awake, kind) VALUES (?, ?, ?)",
                         (as_text(asleep), as_text(awake), kind))
            conn.execute("DELETE FROM sleeps WHERE awake < ?", (as_text(awake - KEEP),))

    def since(self, moment: datetime) -> list[tuple[datetime, datetime, str]]:
        """The gaps that ended at or after `moment`, oldest first: (from, to, kind)."""
        rows = self.db.query("SELECT asleep, awake, kind FROM sleeps WHERE awake >= ? ORDER BY asleep",
                             (as_text(moment),))
        return [(as_time(asleep), as_time(awake), kind) for asleep, awake, kind in rows]  # type: ignore[misc]
