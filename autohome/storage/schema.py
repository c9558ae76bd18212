"""The state database's schema, as the migrations that build it, oldest first."""

import sqlite3

# Forward migrations: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE modules (
        name TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT,
        last_due_at TEXT
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        module TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        duration_s REAL,
        error TEXT
    );
    CREATE INDEX runs_by_module ON runs (module, id);
    CREATE TABLE store (
        module TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (module, key)
    );
    """,
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        created TEXT NOT NULL,
        sender TEXT NOT NULL,
        fields TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT,
        last_error TEXT,
        sent_at TEXT,
        request_id TEXT
    );
    CREATE INDEX outbox_by_state ON outbox (state, id);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # How a run ended: ok, error, timeout, stopped or overrun (NULL in older rows: from error).
    """
    ALTER TABLE runs ADD COLUMN outcome TEXT;
    """,
    # The status page's timeline reads runs by time.
    """
    CREATE INDEX runs_by_started ON runs (started);
    """,
    # When the laptop slept while AutoHome ran: the status page's timeline shows it.
    """
    CREATE TABLE sleeps (
        asleep TEXT NOT NULL,
        awake TEXT NOT NULL
    );
    """,
    # Trimming a module's old runs reaches only the rows it deletes (by module and age).
    """
    CREATE INDEX runs_by_module_started ON runs (module, started);
    """,
    # The runs of each module in each ten minutes, by how they ended: what the status page's
    # day and week are drawn from, so their cost follows what is drawn, not how many runs there
    # were. Kept up by the state writer (runs.add_runs).
    """
    CREATE TABLE run_buckets (
        module TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        how TEXT NOT NULL,
        runs INTEGER NOT NULL,
        first_s REAL NOT NULL,
        last_s REAL NOT NULL,
        longest REAL NOT NULL,
        error TEXT,
        last_id INTEGER NOT NULL,
        PRIMARY KEY (module, bucket, how)
    );
    CREATE INDEX run_buckets_by_last_id ON run_buckets (last_id);
    INSERT INTO run_buckets
        SELECT module, CAST(strftime('%s', started) AS INTEGER) / 600,
               COALESCE(outcome, CASE WHEN error IS NULL THEN 'ok' ELSE 'error' END),
               COUNT(*), (julianday(MIN(started)) - 2440587.5) * 86400.0,
               (julianday(MAX(started)) - 2440587.5) * 86400.0, MAX(COALESCE(duration_s, 0)), error, MAX(id)
        FROM runs GROUP BY 1, 2, 3;
    """,
    # Every gap explained: a sleep, AutoHome stopped cleanly, or stopped without a clean stop.
    """
    ALTER TABLE sleeps ADD COLUMN kind TEXT NOT NULL DEFAULT 'asleep';
    """,
    # Channels: one row per message and channel, each with its own delivery state; quiet
    # hours (hold_until), emergency receipts, and attachments kept beside the messages.
    """
    ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'pushover';
    ALTER TABLE outbox ADD COLUMN hold_until TEXT;
    ALTER TABLE outbox ADD COLUMN receipt TEXT;
    ALTER TABLE outbox ADD COLUMN receipt_state TEXT;
    ALTER TABLE outbox ADD COLUMN attachment_id INTEGER;
    CREATE INDEX outbox_by_channel ON outbox (channel, state, id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        data BLOB NOT NULL
    );
    """,
]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file's schema up to the newest version, in one transaction."""
    # On a connection no other thread has yet (at start, or replacing a damaged file under
    # the lock): its own transaction, not transaction()'s.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this AutoHome understands "
                f"({len(MIGRATIONS)}); upgrade AutoHome"
            )
        for number in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
