"""The one number that says whether anything the console shows has changed."""

from __future__ import annotations

import itertools


class Revision:
    """A number that changes whenever anything the console shows changes; the registry,
    the runner and the states share one, and the console renders again only when it moved.
    Each change takes a fresh number (itertools.count is atomic), so no change can be lost
    between two threads."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.value = 0

    def bump(self) -> None:
        """Note a change (after making it)."""
        self.value = next(self._numbers)
