"""The runs table: finished runs stored a batch at a time, old ones trimmed, and the reads
the console and the status page make of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from autohome.storage.db import Database, RunRow

HISTORY_PER_MODULE = 100  # kept whatever their age
KEEP_RUNS = timedelta(days=7)  # and every run this young (the status page's week)
MAX_RUNS_PER_MODULE = 25_000  # but never more: a week of 30 s runs is 20,160
ROWS_PER_INSERT = 150  # 750 parameters: under the 999 that older SQLite builds allow
BUCKET_S = 600  # run_buckets: the runs of ten minutes, by module and how they ended
KEEP_BUCKETS = KEEP_RUNS + timedelta(days=1)


class BucketRow(NamedTuple):
    """A module's runs in one bucket that ended alike: how many, the first and last start,
    the longest, the newest error (and the newest run's number)."""

    module: str
    bucket: int
    how: str
    runs: int
    first_s: float  # seconds since the epoch
    last_s: float
    longest_s: float
    error: str | None
    last_id: int


def add_runs(db: Database, runs: list[RunRow], trim: set[str], cap: set[str] | None = None) -> None:
    """Record finished runs in one transaction, and drop the runs of the modules in `trim`
    that are older than KEEP_RUNS (from the newest run given) beyond their newest
    HISTORY_PER_MODULE, and of those in `cap` (by default `trim`) any beyond
    MAX_RUNS_PER_MODULE. Each delete reaches only the rows it deletes (an index by module
    and start; by module and id), so its cost does not grow with the history kept."""
    from autohome.storage.db import as_text  # (db.py imports this file)

    # Many rows per INSERT: each statement step lets go of the GIL and takes it back,
    # which in a burst of runs means waiting for it once per step.
    params = [(r.module, as_text(r.started), as_text(r.finished), r.duration_s, r.error, r.outcome)
              for r in runs]
    with db.transaction() as conn:
        last_id = 0
        for first in range(0, len(params), ROWS_PER_INSERT):
            chunk = params[first:first + ROWS_PER_INSERT]
            last_id = conn.execute(
                "INSERT INTO runs (module, started, finished, duration_s, error, outcome) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk)),
                [value for row in chunk for value in row],
            ).lastrowid or 0
        _add_to_buckets(conn, runs, last_id)
        cutoff = as_text(max(r.started for r in runs) - KEEP_RUNS) if runs else None
        for module in trim:
            conn.execute(
                "DELETE FROM runs INDEXED BY runs_by_module_started WHERE module = ? AND started < ? "
                "AND id <= (SELECT id FROM runs WHERE module = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (module, cutoff, module, HISTORY_PER_MODULE),
            )
        if trim:
            oldest = int((max(r.started for r in runs) - KEEP_BUCKETS).timestamp()) // BUCKET_S
            conn.executemany("DELETE FROM run_buckets WHERE module = ? AND bucket < ?",
                             [(module, oldest) for module in trim])
        for module in trim if cap is None else cap:
            conn.execute(
                "DELETE FROM runs WHERE module = ? AND id <= (SELECT id FROM runs WHERE module = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (module, module, MAX_RUNS_PER_MODULE),
            )


def _add_to_buckets(conn: Any, runs: list[RunRow], last_id: int) -> None:
    """Count the runs just inserted (numbered up to `last_id`) into their buckets."""
    groups: dict[tuple[str, int, str], list[Any]] = {}
    for number, run in enumerate(runs, start=last_id - len(runs) + 1):
        how = run.outcome or ("ok" if run.error is None else "error")
        started_s = run.started.timestamp()
        key = (run.module, int(started_s) // BUCKET_S, how)
        group = groups.get(key)
        if group is None:
            groups[key] = [1, started_s, started_s, run.duration_s or 0.0, run.error, number]
        else:
            group[0] += 1
            group[1], group[2] = min(group[1], started_s), max(group[2], started_s)
            group[3] = max(group[3], run.duration_s or 0.0)
            group[4], group[5] = run.error or group[4], number
    conn.executemany(
        "INSERT INTO run_buckets (module, bucket, how, runs, first_s, last_s, longest, error, last_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (module, bucket, how) DO UPDATE SET "
        "runs = runs + excluded.runs, first_s = min(first_s, excluded.first_s), "
        "last_s = max(last_s, excluded.last_s), "
        "longest = max(longest, excluded.longest), error = coalesce(excluded.error, error), "
        "last_id = max(last_id, excluded.last_id)",
        [(*key, count, first, last, longest, error, number)
         for key, (count, first, last, longest, error, number) in groups.items()])


def run_buckets(db: Database, since: datetime, after_id: int = 0, per: int = 1) -> list[BucketRow]:
    """Every module's buckets from the one holding `since` on, `per` of them taken together
    (a week is drawn from hours: six buckets), and only those that took a run numbered above
    `after_id`: what the status page's day and week are drawn from."""
    first = int(since.timestamp()) // BUCKET_S // per * per
    columns = ("module, bucket / :per * :per, how, SUM(runs), MIN(first_s), MAX(last_s), MAX(longest), "
               "error, MAX(last_id)")  # (error: that of the row with the newest run)
    changed = "" if not after_id else (
        "AND (module, bucket / :per, how) IN (SELECT module, bucket / :per, how FROM run_buckets "
        "WHERE last_id > :after AND bucket >= :first)")
    rows = db.query(f"SELECT {columns} FROM run_buckets WHERE bucket >= :first {changed} "  # noqa: S608 - constants
                    "GROUP BY module, bucket / :per, how", {"per": per, "first": first, "after": after_id})
    return [BucketRow(*row) for row in rows]


def history(db: Database, module: str, limit: int = HISTORY_PER_MODULE) -> list[RunRow]:
    """The module's runs, newest first."""
    return _runs(db, "WHERE module = ? ORDER BY id DESC LIMIT ?",
                      (module, min(limit, HISTORY_PER_MODULE)))


def runs_since(db: Database, since: datetime, after_id: int = 0) -> list[RunRow]:
    """Every module's runs that started at or after `since` (and were stored after the run
    `after_id`), oldest first."""
    return _runs(db, "WHERE started >= ? AND id > ? ORDER BY started", (since.isoformat(), after_id))


def latest_runs(db: Database) -> dict[str, RunRow]:
    """Each module's newest stored run (one index seek a module, not a read of the history)."""
    # Each module found by a skip through the index (the next name after the last one), and
    # its newest run by a seek: a few steps a module, not a read of every run.
    rows = _runs(db, "WHERE id IN (WITH RECURSIVE names(name) AS (SELECT MIN(module) FROM runs UNION ALL "
                     "SELECT (SELECT MIN(module) FROM runs WHERE module > names.name) FROM names WHERE name "
                     "IS NOT NULL) SELECT (SELECT MAX(id) FROM runs WHERE module = name) FROM names)")
    return {row.module: row for row in rows}


def _runs(db: Database, where: str, params: tuple[Any, ...] = ()) -> list[RunRow]:
    # `where` is one of the clauses above, never text from outside.
    from autohome.storage.db import RunRow, as_time  # (db.py imports this file)

    columns = "id, module, started, finished, duration_s, error, outcome"
    rows = db.query(f"SELECT {columns} FROM runs {where}", params)
    return [RunRow(i, m, as_time(s), as_time(f), d, e, o) for i, m, s, f, d, e, o in rows]  # type: ignore[arg-type]
