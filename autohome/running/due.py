"""Which modules a tick starts: on schedule, not paused, not off for a missing setting, not
still running from before. Time is an argument: "what is due at 07:00?" is a plain call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from autohome.catalog.loader import ModuleSpec
from autohome.catalog.schedule import is_due
from autohome.storage.state import UNKNOWN, ModuleStatus


def missing_settings(spec: ModuleSpec, settings: Mapping[str, str]) -> list[str]:
    """The settings the module REQUIRES that are not set to anything."""
    return [key for key in spec.requires if not settings.get(key, "").strip()]


def why_off(spec: ModuleSpec, settings: Mapping[str, str]) -> str:
    """Why a module does not run yet ('' when it has every setting it requires)."""
    missing = missing_settings(spec, settings)
    return f"off: set {', '.join(missing)} in .env to turn it on" if missing else ""


def due_modules(specs: list[ModuleSpec], statuses: Mapping[str, ModuleStatus], now: datetime,
                settings: Mapping[str, str], is_busy: Callable[[str], bool],
                cannot: Callable[[ModuleSpec, Exception], None] | None = None) -> list[ModuleSpec]:
    """The modules a tick at `now` starts: on schedule, not paused, not off for a missing
    setting, and not still running or queued from before. A module whose next run cannot be
    computed is handed to `cannot` (or raises, without one); the others are still looked at."""
    due = []
    for spec in specs:
        status = statuses.get(spec.name) or UNKNOWN
        if status.paused or (spec.requires and missing_settings(spec, settings)):
            continue
        first_seen = status.first_seen or now
        try:
            on_time = is_due(spec.schedule, status.last_due_at, first_seen, now)
        except Exception as exc:
            if cannot is None:
                raise
            cannot(spec, exc)
            continue
        if on_time and not is_busy(spec.name):
            due.append(spec)
    return due
