"""The `state-writer` thread: stores finished runs in the database, a batch at a time, and
logs each run's "finished" line once the run is stored.

A killed process so loses only runs whose end was never logged, and the log knows nothing
of the database. While runs of the same tick are still going, the writer waits for them
(GROUP_WAIT_S, and while a burst goes on up to MAX_GATHER_S), so a burst of runs costs a
few transactions instead of one each, written when the burst is over (see
docs/performance.md, "Writers that batch").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from autohome.logs.tree import get_logger
from autohome.storage.db import Database, RunRow
from autohome.storage.runs import add_runs

log = get_logger("autohome.state")

# Trimming old runs costs a DELETE; doing it every this many runs keeps history within
# HISTORY_PER_MODULE + TRIM_EVERY rows while most runs cost one small INSERT.
TRIM_EVERY = 20
CAP_EVERY = 1000
# While other runs of the tick are still going, the writer waits this long for their
# records too; and again while a burst goes on (BURST_RUNS or more came in meanwhile), up
# to MAX_GATHER_S in all. Every SQLite call lets go of the GIL and waits to take it back,
# so a writer that stores runs in the middle of a burst slows the runs themselves.
GROUP_WAIT_S = 0.02
BURST_RUNS = 16
MAX_GATHER_S = 1.0
# After a failed write (a full disk), the records are kept and tried again this much later;
# at most MAX_UNSAVED are kept, the oldest are given up first.
RETRY_S = 5.0
MAX_UNSAVED = 10_000

# A finished run on its way to the database, and the line to log once it is there (a plain tuple).
_Finished = tuple[RunRow, object]


def _handle(record: logging.LogRecord) -> None:
    get_logger(record.name).handle(record)


class RunWriter:
    """Finished runs, handed over by any thread and stored by one: the `state-writer`,
    started with the first run."""

    def __init__(self, db: Database, announce: Callable[[Any], object] | None = None,
                 retry_s: float = RETRY_S) -> None:
        self.db = db
        self.retry_s = retry_s
        self._announce: Callable[[Any], object] = announce or _handle
        self._lock = threading.Lock()
        self._to_write = threading.Condition(self._lock)  # the writer waits: runs to write, or closing
        self._stored = threading.Condition(self._lock)  # flush() waits: runs written (or given up)
        self._since_trim: dict[str, int] = {}
        self._runs_to_come = 0  # runs the latest tick started that have not finished
        self._unsaved: list[_Finished] = []
        self._handed_over = 0  # finished runs given to the writer, ever
        self._written = 0  # ... and written (or given up)
        self._lines_due = 0  # "finished" lines handed over with their runs, ever
        self._lines_out = 0  # ... and logged (once stored, or at once while writes fail)
        self._writer: threading.Thread | None = None
        self._writer_waits = False  # for runs to write: only then does a new run wake it
        self._failing = False  # the last write failed (the failure was logged once)
        self._retry_now = False  # end the wait before the next try (retry_now)
        self._closing = threading.Event()
        self._write_now = threading.Event()  # set by flush() and close(): stop gathering, write now

    def expect(self, runs: int) -> None:
        """A tick started this many runs: while some have not ended, gather their records."""
        with self._lock:
            self._runs_to_come = runs

    def add(self, row: RunRow, announcement: object = None) -> None:
        """Store the run; hand `announcement` (its "finished" line) to `announce` once it is
        (at once while writes fail: the line must not wait for a disk that may not come back)."""
        with self._lock:
            self._runs_to_come = max(0, self._runs_to_come - 1)
            stored = not self._closing.is_set()  # else a run abandoned at shutdown that ended after all
            said = announcement if not stored or self._failing else None
            if said is not None:
                announcement = None
            if stored:
                self._unsaved.append((row, announcement))
                self._handed_over += 1
                self._lines_due += announcement is not None
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_runs, name="state-writer", daemon=True)
                    self._writer.start()
                if self._writer_waits:
                    self._to_write.notify()
        if said is not None:
            self._announce(said)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every run handed over so far is in the database; return whether it is."""
        return self._catch_up(lambda: (self._written, self._handed_over), timeout_s)

    def flush_lines(self, timeout_s: float = 5.0) -> bool:
        """Wait until the "finished" line of every run handed over so far is logged: once the
        run is stored, or at once while writes fail. Return whether they are."""
        return self._catch_up(lambda: (self._lines_out, self._lines_due), timeout_s)

    def _catch_up(self, counts: Callable[[], tuple[int, int]], timeout_s: float) -> bool:
        # Stop the writer's gathering, and wait until the count done reaches the count due now.
        with self._lock:
            done, target = counts()
            if done < target:
                self._write_now.set()
            return self._stored.wait_for(lambda: counts()[0] >= target, timeout_s)

    def retry_now(self) -> None:
        """If runs wait for a retry, try now rather than at the end of RETRY_S."""
        with self._lock:
            if self._failing:
                self._retry_now = True
                self._to_write.notify_all()

    def close(self, timeout_s: float = 5.0) -> bool:
        """Write the runs still waiting, then stop the writer; return whether it ended."""
        with self._lock:
            self._closing.set()
            self._write_now.set()
            writer = self._writer
            self._to_write.notify_all()
        if writer is not None:
            writer.join(timeout_s)
        return writer is None or not writer.is_alive()

    def _write_runs(self) -> None:
        try:
            while self._write_batch():
                pass
        except Exception:  # a bug here must not silently stop storing runs
            log.exception("the state writer stopped; finished runs are no longer stored")

    def _write_batch(self) -> bool:
        with self._lock:
            self._writer_waits = True
            self._to_write.wait_for(lambda: self._unsaved or self._closing.is_set())
            self._writer_waits = False
            in_burst = self._runs_to_come > 0 and not self._closing.is_set()
        if in_burst:  # the tick's other runs will end soon: let them join this batch
            self._gather()
        with self._lock:
            batch, self._unsaved = self._unsaved, []
            self._write_now.clear()  # a flush() from now on waits for runs not in this batch
        if not batch:
            return False  # closed, and nothing left
        rows = [row for row, _ in batch]
        try:
            trim, cap = self._due_for_trim(rows)
            add_runs(self.db, rows, trim, cap)
        except Exception:  # noqa: BLE001 - a full or vanished disk: keep the runs, retry
            self._announce_all(batch)  # the lines must not wait for a disk that may not come back
            self._keep_for_retry([(row, None) for row in rows])
            return True
        self._announce_all(batch)
        if self._failing:
            self._failing = False
            log.info("stored %d finished run(s) that waited for the database", len(batch))
        with self._lock:
            self._written += len(batch)
            self._stored.notify_all()
        return True

    def _gather(self) -> None:
        """Wait for more finished runs while they keep coming, up to MAX_GATHER_S, or until
        someone waits in flush() or close()."""
        waited = 0.0
        while waited < MAX_GATHER_S:
            before = len(self._unsaved)
            if self._write_now.wait(GROUP_WAIT_S):
                return
            waited += GROUP_WAIT_S
            if len(self._unsaved) - before < BURST_RUNS:
                return

    def _announce_all(self, batch: list[_Finished]) -> None:
        lines = [announcement for _, announcement in batch if announcement is not None]
        for announcement in lines:
            self._announce(announcement)
        if lines:
            with self._lock:
                self._lines_out += len(lines)
                self._stored.notify_all()

    def _due_for_trim(self, batch: list[RunRow]) -> tuple[set[str], set[str]]:
        """The modules whose old runs are trimmed now (every TRIM_EVERY runs), and those
        whose count is held to its cap (every CAP_EVERY: finding the 25,000th run walks that
        many index entries)."""
        # Only the writer thread counts, so the count needs no lock.
        trim, cap = set(), set()
        for row in batch:
            count = self._since_trim.get(row.module, 0) + 1
            if count % TRIM_EVERY == 0:
                trim.add(row.module)
            if count >= CAP_EVERY:
                cap.add(row.module)
                count = 0
            self._since_trim[row.module] = count
        return trim, cap

    def _keep_for_retry(self, batch: list[_Finished]) -> None:
        if not self._failing:  # once per streak of failures, not every RETRY_S
            log.exception("could not store %d finished run(s) in %s; they are kept and retried every %gs",
                          len(batch), self.db.path, self.retry_s)
        self._failing = True
        with self._lock:
            self._unsaved[:0] = batch
            dropped = len(self._unsaved) - MAX_UNSAVED
            if dropped > 0:
                del self._unsaved[:dropped]
                self._written += dropped
                log.error("gave up %d unstored run record(s): more than %d waited", dropped, MAX_UNSAVED)
                self._stored.notify_all()
            if not self._closing.is_set():
                self._retry_now = False
                self._to_write.wait_for(lambda: self._closing.is_set() or self._retry_now, self.retry_s)
            elif self._unsaved:  # shutting down, and still failing: give them up, and say so
                log.error("shutting down: %d finished run(s) could not be stored in %s and are lost",
                          len(self._unsaved), self.db.path)
                self._written += len(self._unsaved)
                self._unsaved = []
                self._stored.notify_all()
