"""Helpers shared by the benchmarks: module specs, percentiles, and the results table."""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support.clock: the FakeClock the tests step

from autohome.catalog.loader import ModuleSpec  # noqa: E402
from autohome.catalog.schedule import IntervalSchedule  # noqa: E402

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


def write_modules(folder: Path, count: int, interval: str = "1h", body: str = "pass",
                  needs_network: int = 0) -> Path:
    """`count` module files in `folder`/modules; the first `needs_network` of them NEED it."""
    modules = folder / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        needs = 'NEEDS = ["network"]\n' if i < needs_network else ""
        source = f'INTERVAL = "{interval}"\n{needs}\ndef run(log, notify):\n    {body}\n'
        (modules / f"m{i:05d}.py").write_text(source)
    return modules


class Daemon:
    """`python main.py` in a folder, with its stderr read until a pattern shows."""

    def __init__(self, folder: Path, *args: str, extra_env: dict[str, str] | None = None) -> None:
        import os
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHOME_", "PUSHOVER_"))}
        # As an installed AutoHome starts: from its bytecode cache (some shells switch it off).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(extra_env or {})
        self.started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=folder,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env)

    def wait_for(self, text: str) -> str:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if text in line:
                return line
        raise RuntimeError(f"daemon exited before {text!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def task_figures(pid: int) -> tuple[float, int]:
    """CPU seconds and voluntary context switches, summed over every thread of a process."""
    cpu_ns, switches = 0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            cpu_ns += int((task / "schedstat").read_text().split()[0])
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    switches += int(line.split()[1])
        except (OSError, IndexError):
            continue  # a thread that ended meanwhile
    return cpu_ns / 1e9, switches


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
