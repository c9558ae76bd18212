"""The key-value store a module gets by naming a third parameter: run(log, notify, store)."""

from __future__ import annotations

import json
from typing import Any

from autohome.db import Database


class ModuleStore:
    """JSON values kept per module across runs and restarts."""

    def __init__(self, db: Database, module: str) -> None:
        self._db = db
        self._module = module

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` if the key was never set."""
        found, value = self._db.store_get(self._module, str(key))
        return value if found else default

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value (str, number, bool, None, list, dict)."""
        try:
            encoded = json.dumps(value, allow_nan=False)  # NaN and infinity are not JSON
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"store.set({key!r}, ...) needs a JSON value (str, number, bool, None, list, dict): {exc}"
            ) from None
        self._db.store_set(self._module, str(key), encoded)

    def delete(self, key: str) -> None:
        """Forget a key (no error if it was never set)."""
        self._db.store_delete(self._module, str(key))
