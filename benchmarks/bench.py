"""Helpers shared by the benchmarks: module specs, percentiles, and the results table."""

from __future__ import annotations

import platform
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autohome.loader import ModuleSpec  # noqa: E402
from autohome.schedule import IntervalSchedule  # noqa: E402

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def specs(count: int, run: Callable[..., Any], interval: timedelta = timedelta(hours=1)) -> list[ModuleSpec]:
    """`count` in-memory modules sharing one run function."""
    return [ModuleSpec(f"m{i:05d}", Path(f"m{i:05d}.py"), IntervalSchedule(interval), run)
            for i in range(count)]


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def temp_dir() -> Path:
    """A folder that lives as long as the process."""
    return Path(tempfile.mkdtemp(prefix="autohome-bench-"))


def report(title: str, rows: list[tuple[str, float, float, str, str]]) -> None:
    """Print (figure, autohome, baseline, unit, target) rows with the ratio."""
    print(f"{title}  (Python {platform.python_version()}, {platform.system()} {platform.machine()})")
    header = f"{'figure':34} {'autohome':>12} {'baseline':>12} {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    for name, ours, base, unit, target in rows:
        ratio = f"{ours / base:6.2f}x" if base else "     -"
        print(f"{name:34} {ours:10.3f}{unit:>2} {base:10.3f}{unit:>2} {ratio}  {target}")
