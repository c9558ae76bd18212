"""The SQLite database, the only place AutoHome speaks SQL: the connection and its writer
thread (db, held), the schema and its migrations (schema), damage and repair (repair), the
modules' states and runs (state, runwriter, runs), the stores modules keep (store), the
outbox's table (outbox_table), the loop's sleeps (sleeps), the instance lock (instance) and
the watch on a database that cannot be written (watch)."""
