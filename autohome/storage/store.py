"""The key-value store a module gets by naming a third parameter: run(log, notify, store), and
its rows in the state database."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from autohome.storage.db import Database, write_store


class ModuleStore:
    """JSON values kept per module across runs and restarts. A write the disk refuses is held
    in memory and made later (the database's HeldWrites); reads see it meanwhile."""

    def __init__(self, db: Database, module: str) -> None:
        self._db = db
        self._module = module

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` if the key was never set."""
        found, value = store_get(self._db, self._module, str(key))
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (str, number, bool, None, list, dict)."""
        try:
            encoded = json.dumps(value, allow_nan=False)  # NaN and infinity are not JSON
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"store.set({key!r}, ...) needs a JSON value (str, number, bool, None, list, dict): {exc}"
            ) from None
        store_set(self._db, self._module, str(key), encoded)

    def delete(self, key: str) -> None:
        """Forget a key (no error if it was never set)."""
        store_set(self._db, self._module, str(key), None)


def store_get(db: Database, module: str, key: str) -> tuple[bool, Any]:
    """(found, value) for one key of a module's store (a held write first)."""
    held = db.held.store_value(module, key) if db.held else None
    if held is not None:
        return (True, json.loads(held[1])) if held[0] and held[1] is not None else (False, None)
    rows = db.query("SELECT value FROM store WHERE module = ? AND key = ?", (module, key))
    return (True, json.loads(rows[0][0])) if rows else (False, None)


def store_set(db: Database, module: str, key: str, encoded: str | None) -> None:
    """Save one JSON-encoded value (None: forget the key); if the disk refuses, the write is
    held and made later (never raises for that)."""
    if db.held.holds_store(module, key):  # a newer write waits behind the held one
        db.held.hold_store(module, key, encoded)
        return
    try:
        with db.transaction() as conn:
            write_store(conn, module, key, encoded)
    except (sqlite3.Error, OSError):
        db.held.hold_store(module, key, encoded)


def store_items(db: Database, module: str) -> list[tuple[str, str]]:
    """What a module keeps in its store, sorted by key: each value as its JSON text (held
    writes included)."""
    values: dict[str, str | None] = dict(db.query("SELECT key, value FROM store WHERE module = ?", (module,)))
    if db.held:
        values.update(db.held.store_values(module))
    return sorted((key, value) for key, value in values.items() if value is not None)
