"""The state database's upkeep at each tick (the outbox pruned where no sender does it), and
telling the user once about trouble with the machine, not with a module: a state database
that cannot be written (a full or failing disk), or that was found damaged and replaced.
Looked at once a tick; said in the log and in a notification when it starts, and again when
it is over (after two ticks without it, so a disk at the edge does not ring the phone at
every write)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from autohome.durations import format_duration
from autohome.logs.tree import get_logger
from autohome.storage.db import Database

log = get_logger("autohome.main")


class StorageWatch:
    """Watches the database's `failing` and `replaced`, and says what it finds once."""

    def __init__(self, db: Database, alert: Callable[[str, str], None], zone: tzinfo,
                 retry: Callable[[], None] = lambda: None,
                 prune: Callable[[datetime], object] | None = None) -> None:
        self.db = db
        self.alert = alert
        self.retry = retry  # try what waits for the database now (RunWriter.retry_now)
        self.prune = prune  # the outbox's daily pruning, where no sender thread does it
        self.zone = zone
        self.since: datetime | None = None  # when writes began to fail, while they do
        self._clear_ticks = 0

    def check(self, now: datetime) -> None:
        """At each tick: try what waits for the database, and say what changed since the last one."""
        self.db.write_memory()  # after a damaged file was replaced: what memory holds goes in
        if self.prune is not None:
            self.prune(now)
        if self.db.failing is not None:
            self.db.held.retry_now()
            self.retry()
        while self.db.replaced:
            notice = self.db.replaced.pop(0)
            log.error("%s", notice)
            self.alert("AutoHome found its state database damaged; the log says what it did and what was "
                       "kept", "AutoHome: state database damaged")
        failing = self.db.failing
        if failing is not None:
            self._clear_ticks = 0
            if self.since is None:
                self.since = now
                log.error("AutoHome cannot write its state database %s (%s). Modules keep running on what "
                          "it holds in memory: finished runs, schedule positions, store writes and "
                          "notifications are kept and written again every 5 s. Free some space on that disk "
                          "(or check it); AutoHome says so here when writes work again",
                          self.db.path, failing)
                self.alert(f"AutoHome cannot write its state database ({failing}); modules keep running, "
                           "and what they do is kept in memory until it can. Free some disk space.",
                           "AutoHome: disk trouble")
            return
        if self.since is not None:
            self._clear_ticks += 1
            if self._clear_ticks < 2:
                return
            since = f"{self.since.astimezone(self.zone):%Y-%m-%d %H:%M:%S}"
            log.info("the state database %s takes writes again (it could not from %s, for %s); what was "
                     "kept meanwhile is written", self.db.path, since, format_duration(now - self.since))
            self.alert(f"AutoHome writes its state database again (it could not from {since}).",
                       "AutoHome: disk trouble over")
            self.since = None
