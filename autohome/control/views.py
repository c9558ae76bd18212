"""What the console shows, as plain values, and the `Controller` protocol it reads them through."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import NamedTuple, Protocol

from autohome.catalog.schedule import Schedule
from autohome.durations import format_duration
from autohome.logs.follow import Follower
from autohome.loop import GAP_KINDS as GAP_KINDS  # what each gap in the timeline means
from autohome.loop import tick_at_or_after
from autohome.notifications.pushover import Quota
from autohome.storage.outbox_table import OutboxRow
from autohome.storage.runs import BUCKET_S as BUCKET_S  # the page draws runs by these buckets
from autohome.storage.runs import BucketRow
from autohome.storage.state import ModuleStatus, Outcome, RunRecord
from autohome.text import Word


class ModuleState(Word):
    """Where a module stands, as the console and the page show it."""

    IDLE = "idle"  # waiting for its next run
    RUNNING = "running"
    OVERRUN = "overrun"  # running past its TIMEOUT (a thread run, which cannot be stopped)
    QUEUED = "queued"  # due, waiting in the backlog for a thread
    PAUSED = "paused"
    FAILING = "failing"  # waiting for its next run; the last one failed
    OFF = "off"  # a setting it REQUIRES is not set
    BROKEN = "broken"  # its file does not load, or its next run cannot be computed


def module_state(status: ModuleStatus, *, is_broken: bool = False, off: str = "", is_running: bool = False,
                 is_overrunning: bool = False, is_queued: bool = False) -> ModuleState:
    """Where a module stands: the one answer that `modules`, `status`, the page and `autohome
    check` all give."""
    if is_broken:
        return ModuleState.BROKEN
    if is_running:
        return ModuleState.OVERRUN if is_overrunning else ModuleState.RUNNING
    if off:
        return ModuleState.OFF
    if is_queued:
        return ModuleState.QUEUED
    if status.paused:
        return ModuleState.PAUSED
    if status.last_run is not None and not status.last_run.is_ok:
        return ModuleState.FAILING
    return ModuleState.IDLE


def upcoming_runs(schedule: Schedule, status: ModuleStatus, now: datetime, tick: timedelta, zone: tzinfo,
                  count: int = 1) -> list[datetime]:
    """When the module's next `count` runs start, as the ticks start them: each due time
    taken to the first tick at or after it (so an INTERVAL shorter than the tick runs each
    tick), and an overdue run at the next tick."""
    runs: list[datetime] = []
    last, first_seen = status.last_due_at, status.first_seen or now
    for _ in range(count):
        due = schedule.next_run(last, first_seen)
        last = tick_at_or_after(due if runs else max(due, now), tick, zone)
        runs.append(last)
    return runs


def cadence(schedule: Schedule, tick: timedelta) -> str:
    """The schedule as shown, with what the tick makes of an interval shorter than itself."""
    interval = getattr(schedule, "interval", None)
    shown = schedule.describe()
    if interval is not None and interval < tick:
        return f"{shown} (each {format_duration(tick)} tick)"
    return shown


class ModuleView(NamedTuple):
    """What the console shows about one module."""

    name: str
    state: ModuleState
    schedule: str  # "every 5m", "daily 08:00", "cron */15 * * * *"
    status: ModuleStatus
    next_run: datetime | None
    description: str = ""
    problem: str = ""  # why it is broken, or why its last edit was not loaded
    path: str = ""
    timeout: timedelta | None = None
    isolated: bool = False  # runs in a child process
    isolated_why: str = ""  # ... though its file does not say so (it crashed AutoHome: crashes.py)
    running_since: datetime | None = None  # when the run going on now started


class StatusView(NamedTuple):
    """What `status` shows."""

    started_at: datetime
    now: datetime
    tick: timedelta
    next_tick: datetime | None
    running: int
    max_threads: int
    queued: int
    drainer_alive: bool
    modules: int
    broken: int
    outbox: dict[str, int]
    quota: Quota | None
    states: dict[str, int] = {}  # modules by ModuleState
    last_gap: tuple[datetime, datetime, str] | None = None  # (from, to, kind): GAP_KINDS
    channels: dict[str, int] = {}  # messages still to send, per channel
    retrying: dict[str, str] = {}  # channel -> the error its waiting messages are retried for
    has_pushover: bool = False  # PUSHOVER_TOKEN and PUSHOVER_USER are set: a quota to know


def quota_text(status: StatusView) -> str:
    """The Pushover quota as the console and the page say it."""
    if status.quota is not None:
        return f"{status.quota.remaining} of {status.quota.limit} messages left this month"
    if not status.has_pushover:
        return "no Pushover configured"
    return "not known yet: read at start and daily, and from every answer"

class Controller(Protocol):
    """What the console and the status page may ask of the daemon (control/panel.py)."""

    def module_views(self) -> list[ModuleView]:
        """Every module, loaded or broken, sorted by name."""
        ...

    def views_version(self) -> tuple[int, ...]:
        """A value that changes whenever anything module_views() shows changes."""
        ...

    def recent_lines(self, name: str, count: int) -> list[str]:
        """The module's most recent log lines."""
        ...

    def history(self, name: str, count: int) -> list[RunRecord]:
        """The module's stored runs, newest first."""
        ...

    def reload(self) -> str:
        """Re-read changed module files now; say what changed."""
        ...

    def reload_settings(self) -> str:
        """Read .env again, then the module files; say what changed."""
        ...

    def status(self) -> StatusView:
        """How the daemon is doing."""
        ...

    def log_tail(self, count: int) -> list[str]:
        """The lines of the last entries of current.log."""
        ...

    def follow_log(self) -> Follower | None:
        """The log's entries from now on, as they are written (None: there is no log)."""
        ...

    def notifications(self, limit: int) -> list[OutboxRow]:
        """The newest notifications."""
        ...

    def notification(self, message_id: int) -> OutboxRow | None:
        """One notification by id."""
        ...

    def resend(self, message_id: int) -> str:
        """Queue a failed notification again; say what happened."""
        ...

    def drop(self, message_id: int) -> str:
        """Give up on a pending notification; say what happened."""
        ...

    def notify_test(self, message: str) -> str:
        """Queue a test notification."""
        ...

    def last_output(self, name: str, count: int) -> list[str]:
        """What the module's last run printed (its last `count` lines)."""
        ...

    def store_items(self, name: str) -> list[tuple[str, str]]:
        """What the module keeps in its store: (key, value as JSON), sorted by key."""
        ...

    def stop_run(self, name: str) -> str:
        """Stop the module's run now, if it can be stopped; say what happened."""
        ...

    def run_now(self, name: str, force: bool = False) -> str:
        """Run the module now through the thread cap; say what happened."""
        ...

    def set_paused(self, name: str, paused: bool) -> str:
        """Pause or resume the module's scheduled runs; say what happened."""
        ...

    def request_stop(self) -> None:
        """Shut AutoHome down."""
        ...

    def runs_since(self, since: datetime, after_id: int = 0) -> list[tuple[int, str, RunRecord]]:
        """Every module's stored runs from `since` on (stored after run `after_id`), oldest
        first: (number, module, run)."""
        ...

    def run_buckets(self, since: datetime, after_id: int = 0, per: int = 1) -> list[BucketRow]:
        """Every module's runs by ten minutes (`per` buckets together) from `since` on."""
        ...

    def sleeps(self) -> list[tuple[datetime, datetime, str]]:
        """When the loop woke after a gap (asleep or suspended) since start: (from, to)."""
        ...


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def format_time(moment: datetime | None, zone: tzinfo) -> str:
    """A moment in the local zone, or '-'."""
    return "-" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"


def nearest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of the choices, or nothing."""
    import difflib  # imported at the first mistake, not at start-up

    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def channel_waiting(name: str, count: int, retrying: dict[str, str]) -> str:
    """One channel's wait, as the console and the page say it: `ntfy 2, retrying: HTTP 503`."""
    error = retrying.get(name)
    if error is None:
        return f"{name} {count}"
    return f"{name} {count}, retrying: {error if len(error) <= 60 else error[:59] + '…'}"


def outcome_text(run: RunRecord, width: int = 60) -> str:
    """How a run ended, in a few words: ok, its error, or how it was stopped."""
    how = run.how
    if how is Outcome.TIMEOUT:
        outcome = str(run.error)
    elif how is Outcome.STOPPED:
        outcome = f"{how}: {run.error}"
    elif how is Outcome.SKIPPED:
        outcome = f"skipped: {run.error}"
    elif how is Outcome.OVERRUN:
        outcome = "overrun (ended after its TIMEOUT)"
    else:
        outcome = "ok" if run.is_ok else f"error: {run.error}"
    return outcome if len(outcome) <= width else outcome[: width - 1] + "…"
