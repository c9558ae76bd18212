"""The console's commands, each declared once in COMMANDS: its words and arguments, its line
in `help`, its longer help, its handler, what its arguments complete to, and whether the
status page may call it. `help`, Tab, `complete`, the dispatcher and the page all read it.
Each handler takes words and returns text; none touches a socket."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import timezone, tzinfo
from typing import NamedTuple

from autohome import __version__
from autohome.control.completion import FOLLOW_FLAGS, complete, is_following
from autohome.control.views import (
    GAP_KINDS,
    Controller,
    ModuleState,
    ModuleView,
    StatusView,
    channel_waiting,
    format_table,
    format_time,
    nearest,
    outcome_text,
    quota_text,
)
from autohome.durations import format_duration
from autohome.logs.follow import Follower
from autohome.storage.outbox_table import Delivery
from autohome.storage.state import Outcome
from autohome.text import shorten

MAX_LOG_LINES = 1000
STORE_VALUE_CHARS = 80  # of a store value in `modules read`: one line
MAX_STORE_KEYS = 50
# What the console's answers point to, as the status page shows it.
_ON_THE_PAGE = (("see 'notifications'", "it is listed under Notifications"),
                ("see 'modules' for the list", "see the modules table"))
TABLE_WIDTH = 120  # `modules` fits this many columns, whatever a module's error says
MIN_LAST_RUN = 60


class Reply(NamedTuple):
    """A command's answer, whether the connection closes after it, what to do once the
    answer has been sent (shutting down must not cut off its own answer), and whether the
    session goes on to follow the log (`log -f`)."""

    text: str
    close: bool = False
    then: Callable[[], None] | None = None
    follow: Follower | None = None  # after the text, send the log's new entries


class Commands:
    """Runs console lines against the daemon through its Controller, by the COMMANDS table."""

    def __init__(self, controller: Controller, zone: tzinfo = timezone.utc) -> None:
        self.controller = controller
        self.zone = zone
        self._modules_cache: tuple[tuple[int, ...], Reply] | None = None  # by views_version

    def execute(self, line: str) -> Reply:
        """Run one command line."""
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if not words:
            return Reply("")
        command, args = find(words)
        if command is not None:
            return command.handler(self, args)
        first = words[0].lower()
        group = [command.usage for command in COMMANDS if command.words[0] == first]
        if group:  # `notify` alone, or with a word it does not know
            return Reply(f"usage: {' | '.join(group)}")
        return Reply(f"unknown command {words[0]!r}{nearest(words[0], NAMES)}; try help")

    def page_action(self, action: str, module: str | None = None, text: str = "") -> str | None:
        """Run the command the status page calls `action`, on a module or with a text, and
        return its answer; None when the page may call no such command."""
        command = PAGE_ACTIONS.get(action)
        if command is None or (module is not None) != (" NAME" in command.usage):
            return None
        answer = command.handler(self, [module] if module is not None else [text]).text
        for console, page in _ON_THE_PAGE:  # the page has no `notifications` command: it shows them
            answer = answer.replace(console, page)
        return answer

    def complete(self, text: str) -> list[str]:
        """Whole words that could stand where the last word of `text` is being typed."""
        return complete(text, BY_WORDS, lambda: [view.name for view in self.controller.module_views()])

    def _complete(self, args: list[str]) -> Reply:
        # A client quotes what is typed so far, so that a trailing space survives.
        return Reply("\n".join(self.complete(" ".join(args))))

    def _modules_list(self, args: list[str]) -> Reply:
        if args:  # `modules fly`: no such action
            return Reply(f"unknown action 'modules {args[0]}'{nearest(args[0].lower(), MODULE_ACTIONS)}; "
                         "try help")
        return self._modules(args)

    def _help(self, args: list[str]) -> Reply:
        commands: list[Command] = [command for command in COMMANDS if command.summary]
        details = ""
        if args:  # help NAME: that command's usages only, and its longer help if it is one command
            topic = " ".join(args).lower()
            commands = [command for command in commands
                        if command.usage == topic or command.usage.startswith(topic + " ")]
            if not commands:
                return Reply(f"no command {topic!r}{nearest(topic, NAMES)}; 'help' lists them all")
            if len(commands) == 1:
                details = commands[0].details
        width = max(len(command.usage) for command in commands)
        lines = [f"{command.usage.ljust(width)}  {command.summary}" for command in commands]
        return Reply("\n".join([*lines, *([""] + details.splitlines() if details else [])]))

    def _quit(self, _: list[str]) -> Reply:
        return Reply("bye", close=True)

    def _shutdown(self, _: list[str]) -> Reply:
        return Reply("shutting down AutoHome", close=True, then=self.controller.request_stop)

    def _modules(self, _: list[str]) -> Reply:
        # Many clients asking while nothing changes get the same text: render it once.
        version = self.controller.views_version()
        cached = self._modules_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        reply = self._render_modules()
        self._modules_cache = (version, reply)
        return reply

    def _render_modules(self) -> Reply:
        views = self.controller.module_views()
        if not views:
            return Reply("no modules: put a .py file with INTERVAL and run(log, notify) in modules/")
        rows = []
        for view in views:
            if view.state is ModuleState.BROKEN:
                rows.append([view.name, "broken", "-", "-", view.problem[:70], "-"])
                continue
            last = view.status.last_run
            last_text = "never" if last is None else (
                f"{format_time(last.started, self.zone)} ({last.duration_s:.2f}s) {outcome_text(last)}")
            if view.problem and view.state is not ModuleState.OFF:
                last_text += " [edit not loaded, see modules read]"
            quiet = view.state in (ModuleState.PAUSED, ModuleState.OFF)
            next_run = view.state if quiet else format_time(view.next_run, self.zone)
            rows.append([view.name, view.state, view.schedule, "process" if view.isolated else "thread",
                         last_text, next_run])
        headers = ["NAME", "STATE", "SCHEDULE", "RUNS IN", "LAST RUN", "NEXT RUN"]
        # The LAST RUN column takes what the others leave of TABLE_WIDTH: one long error does
        # not widen every line (`modules read` shows more of it).
        others = sum(max(len(row[i]) for row in [headers, *rows]) for i in (0, 1, 2, 3, 5)) + 2 * 5
        room = max(MIN_LAST_RUN, TABLE_WIDTH - others)
        for row in rows:
            row[4] = shorten(row[4], room)
        return Reply(format_table(headers, rows))

    def _find(self, args: list[str], usage: str) -> ModuleView | Reply:
        if len(args) != 1:
            return Reply(f"usage: {usage} NAME (see 'modules' for names)")
        for view in self.controller.module_views():
            if view.name == args[0]:
                return view
        names = [view.name for view in self.controller.module_views()]
        return Reply(f"no module named {args[0]!r}{nearest(args[0], names)}; see 'modules' for the list")

    def _read(self, args: list[str]) -> Reply:
        view = self._find(args, "modules read")
        if isinstance(view, Reply):
            return view
        quiet = view.state in (ModuleState.PAUSED, ModuleState.OFF)
        next_run = view.state if quiet else format_time(view.next_run, self.zone)
        lines = [
            f"{view.name}: {view.description or '(no description: add a docstring)'}",
            f"file:      {view.path}",
            f"state:     {view.state}",
            f"schedule:  {view.schedule}",
            f"next run:  {next_run if view.state is not ModuleState.BROKEN else '-'}",
        ]
        if view.state is not ModuleState.BROKEN:
            where = f"a child process: {view.isolated_why}" if view.isolated_why else (
                "a child process (ISOLATE)" if view.isolated else "a thread")
            lines.append(f"runs in:   {where}")
        if view.timeout is not None:
            lines.append(f"timeout:   {format_duration(view.timeout)}")
        if view.running_since is not None:
            lines.append(f"running since {format_time(view.running_since, self.zone)}")
        if view.problem:
            lines.append(f"problem:   {view.problem}")
        if view.state is ModuleState.OVERRUN:
            lines.append("problem:   running past its TIMEOUT; a thread cannot be stopped: "
                         "set ISOLATE = True in its file to let AutoHome stop it")
        history = self.controller.history(view.name, 10)
        if history:
            failed = sum(not run.is_ok for run in history)
            skipped = sum(run.how is Outcome.SKIPPED for run in history)
            lines.append(f"recent runs ({len(history)} shown, {failed} failed"
                         + (f", {skipped} skipped" if skipped else "") + "), newest first:")
            for run in history:
                started = format_time(run.started, self.zone)
                lines.append(f"  {started}  {run.duration_s:8.2f}s  {outcome_text(run, 100)}")
        else:
            lines.append("recent runs: none yet")
        items = self.controller.store_items(view.name)
        lines.append(f"store:     {len(items)} key{'s' if len(items) != 1 else ''}" if items
                     else "store:     empty")
        lines.extend(f"  {key} = {shorten(value, STORE_VALUE_CHARS)}"
                     for key, value in items[:MAX_STORE_KEYS])
        if len(items) > MAX_STORE_KEYS:
            lines.append(f"  ... and {len(items) - MAX_STORE_KEYS} more")
        output = self.controller.last_output(view.name, 20)
        lines.append("output of the last run:" if output else "output of the last run: none")
        lines.extend(f"  {line}" for line in output)
        recent = self.controller.recent_lines(view.name, 10)
        lines.append("recent log lines:" if recent else "recent log lines: none since start")
        lines.extend(f"  {line}" for line in recent)
        return Reply("\n".join(lines))

    def _stop(self, args: list[str]) -> Reply:
        view = self._find(args, "modules stop")
        return view if isinstance(view, Reply) else Reply(self.controller.stop_run(view.name))

    def _run(self, args: list[str]) -> Reply:
        force = len(args) == 2 and args[1].lower() == "force"
        view = self._find(args[:1] if force else args, "modules run")
        return view if isinstance(view, Reply) else Reply(self.controller.run_now(view.name, force))

    def _pause(self, args: list[str]) -> Reply:
        view = self._find(args, "modules pause")
        if isinstance(view, Reply):
            return view
        return Reply(self.controller.set_paused(view.name, True))

    def _status(self, _: list[str]) -> Reply:
        view = self.controller.status()
        uptime = format_duration(view.now - view.started_at) if view.now > view.started_at else "0s"
        rows = [
            ["version", __version__],
            ["uptime", f"{uptime} (since {format_time(view.started_at, self.zone)})"],
            ["tick", f"every {format_duration(view.tick)}, next at {format_time(view.next_tick, self.zone)}"],
            ["threads", f"{view.running} of {view.max_threads} running modules"],
            ["backlog", f"{view.queued} waiting for a thread"],
            ["gap", _gap(view, self.zone)],
            ["modules", _module_counts(view)],
            ["outbox", ", ".join(f"{n} {state}" for state, n in sorted(view.outbox.items())) or "empty"],
            *([["waiting", "; ".join(channel_waiting(name, count, view.retrying)
                                     for name, count in view.channels.items())]] if view.channels else []),
            ["quota", quota_text(view)],
        ]
        return Reply(format_table(["STATUS", ""], rows).split("\n", 1)[1])

    def _log(self, args: list[str]) -> Reply:
        follow = is_following(["log", *args])
        numbers = [arg for arg in args if arg not in FOLLOW_FLAGS]
        if len(numbers) > 1 or (numbers and not numbers[0].isdigit()):
            return Reply(f"usage: log [N] [-f], N a whole number up to {MAX_LOG_LINES}")
        count = min(int(numbers[0]) if numbers else 20, MAX_LOG_LINES)
        # Following starts before the tail is read: an entry written in between comes in
        # both, and the follower drops it, rather than in neither.
        follower = self.controller.follow_log() if follow else None
        lines = self.controller.log_tail(count) if count else []
        if not follow:
            return Reply("\n".join(lines) if lines else "the log is empty")
        header = "following the log; Ctrl-C or Enter stops"
        if follower is None:
            return Reply("\n".join([*lines, header, "there is no log to follow"]))
        follower.skip(lines)
        return Reply("\n".join([*lines, header]), follow=follower)

    def _notifications(self, args: list[str]) -> Reply:
        if args:
            return self._notification_action(args)
        rows = []
        for row in self.controller.notifications(20):
            detail = row.last_error or ""
            if row.state == Delivery.PENDING and row.attempts:
                detail = f"retry at {format_time(row.next_attempt, self.zone)}: {detail}"
            elif row.state == Delivery.PENDING and row.hold_until is not None:
                detail = f"quiet hours: held until {format_time(row.hold_until, self.zone)}"
            elif row.receipt_state:
                detail = f"emergency: {row.receipt_state}"
            text = str(row.fields.get("message", ""))
            rows.append([str(row.id), format_time(row.created, self.zone),
                         format_time(row.sent_at, self.zone), row.channel, row.state, str(row.attempts),
                         row.sender, text if len(text) <= 40 else text[:39] + "…", detail[:80]])
        if not rows:
            return Reply("no notifications yet")
        headers = ["ID", "QUEUED", "SENT", "TO", "STATE", "TRIES", "FROM", "MESSAGE", "ERROR"]
        return Reply(format_table(headers, rows))

    def _read_notification(self, args: list[str]) -> Reply:
        return self._notification_action(["read", *args])

    def _resend_notification(self, args: list[str]) -> Reply:
        return self._notification_action(["resend", *args])

    def _drop_notification(self, args: list[str]) -> Reply:
        return self._notification_action(["drop", *args])

    def _notification_action(self, args: list[str]) -> Reply:
        action = args[0].lower()
        if action not in ("read", "resend", "drop") or len(args) != 2 or not args[1].isdigit():
            return Reply("usage: notifications [read ID | resend ID | drop ID] (IDs are in 'notifications')")
        message_id = int(args[1])
        if action == "resend":
            return Reply(self.controller.resend(message_id))
        if action == "drop":
            return Reply(self.controller.drop(message_id))
        row = self.controller.notification(message_id)
        if row is None:
            return Reply(f"no notification {message_id}, see 'notifications'")
        lines = [f"notification {row.id} from {row.sender}: {row.state}, {row.attempts} tries",
                 f"channel:   {row.channel}",
                 f"queued:    {format_time(row.created, self.zone)}",
                 f"sent:      {format_time(row.sent_at, self.zone)}"]
        if row.hold_until is not None:
            lines.append(f"held:      until {format_time(row.hold_until, self.zone)} (quiet hours)")
        if row.receipt:
            lines.append(f"receipt:   {row.receipt}: {row.receipt_state}")
        if row.last_error:
            lines.append(f"error:     {row.last_error}")
        lines.extend(f"{key + ':':<10} {value}" for key, value in row.fields.items())
        return Reply("\n".join(lines))

    def _notify_test(self, args: list[str]) -> Reply:
        return Reply(self.controller.notify_test(" ".join(args) or "Test notification from AutoHome"))

    def _reload_settings(self, _: list[str]) -> Reply:
        return Reply(self.controller.reload_settings())

    def _reload(self, _: list[str]) -> Reply:
        return Reply(self.controller.reload())

    def _start(self, args: list[str]) -> Reply:
        view = self._find(args, "modules start")
        if isinstance(view, Reply):
            return view
        return Reply(self.controller.set_paused(view.name, False))


def _gap(view: StatusView, zone: tzinfo) -> str:
    """The last gap in AutoHome's watch, with its cause."""
    if view.last_gap is None:
        return "none"
    start, end, kind = view.last_gap
    return (f"{GAP_KINDS.get(kind, kind)}: {format_duration(end - start)}, from {format_time(start, zone)} "
            f"to {format_time(end, zone)}")


def _module_counts(view: StatusView) -> str:
    """How many modules there are, and how many stand where: `5 (3 idle, 1 failing, 1 off)`."""
    total = sum(view.states.values()) or view.modules + view.broken
    counts = [f"{view.states[state]} {state}" for state in ModuleState if view.states.get(state)]
    return f"{total} ({', '.join(counts)})" if counts else str(total)


Handler = Callable[[Commands, list[str]], Reply]
Completer = Callable[[list[str], Callable[[], list[str]]], list[str]]


def _no_words(typed: list[str], module_names: Callable[[], list[str]]) -> list[str]:
    return []


def _a_module(typed: list[str], module_names: Callable[[], list[str]]) -> list[str]:
    """A module's name, as the command's one argument."""
    return [] if typed else module_names()


def _a_module_then_force(typed: list[str], module_names: Callable[[], list[str]]) -> list[str]:
    """A module's name, then `force`."""
    return module_names() if not typed else ["force"] if len(typed) == 1 else []


def _follow_flag(typed: list[str], module_names: Callable[[], list[str]]) -> list[str]:
    return [] if any(word in FOLLOW_FLAGS for word in typed) else ["-f"]


def _a_command(typed: list[str], module_names: Callable[[], list[str]]) -> list[str]:
    return [] if typed else NAMES


class Command(NamedTuple):
    """One console command, declared once."""

    usage: str  # its words, then its arguments in capitals or brackets: "modules read NAME"
    summary: str  # its line in `help` ("": not listed)
    handler: Handler
    details: str = ""  # shown under its line by `help COMMAND`
    completes: Completer = _no_words  # what Tab offers for its arguments, given those typed
    aliases: tuple[str, ...] = ()  # other words for it: "exit", "modules list"
    page: str = ""  # the status page's action that calls it ("": the page may not)

    @property
    def words(self) -> tuple[str, ...]:
        """The words that name it: the usage up to its first argument."""
        words = []
        for word in self.usage.split():
            if not word.islower() or word.startswith(("[", "-")):
                break
            words.append(word)
        return tuple(words)


COMMANDS: tuple[Command, ...] = (
    Command("help [COMMAND]", "list the commands, or show one command's usage", Commands._help,
            "help alone lists every command a line each; help with a command's words lists its "
            "usages, and\nfor one command this longer help too.", _a_command, aliases=("?",)),
    Command("modules", "table of every module: state, schedule, last and next run", Commands._modules_list,
            "STATE is idle, running, overrun (past its TIMEOUT), queued (waiting for a thread), "
            "paused,\noff (a setting it REQUIRES is missing) or broken (its file does not load).",
            aliases=("modules list",)),
    Command("modules read NAME", "a module's description, recent runs and log lines", Commands._read,
            "Its file, state, schedule, next run, where it runs, its TIMEOUT, its last ten runs, "
            "the keys\nand values in its store, what its last run printed and its latest log lines.",
            _a_module),
    Command("modules run NAME [force]", "run a module now (through the thread cap)", Commands._run,
            "The run waits in the backlog while every thread is busy; it counts as the module's "
            "due run,\nso the next scheduled one comes an interval later. A module whose NEEDS "
            "do not hold now\n(offline, on battery) is refused, saying why; `force` runs it anyway.",
            _a_module_then_force, page="run"),
    Command("modules pause NAME", "stop a module's scheduled runs", Commands._pause,
            "A paused module stays paused across restarts; 'modules run' still runs it by hand.",
            _a_module, page="pause"),
    Command("modules start NAME", "resume a paused module", Commands._start,
            "Its schedule counts from its last due run, as if it had never been paused.",
            _a_module, page="resume"),
    Command("modules stop NAME", "stop a module's run now (isolated runs; a thread cannot be stopped)",
            Commands._stop, "SIGTERM, then SIGKILL after AUTOHOME_STOP_GRACE_SECONDS, to the child "
            "process and what it\nstarted. Set ISOLATE = True in a module's file to make it stoppable.",
            _a_module, page="stop"),
    Command("modules reload", "pick up edited, added and removed module files now", Commands._reload,
            "AutoHome also does this at every tick; a file that no longer loads keeps its last "
            "good version\nrunning, and the problem is shown."),
    Command("reload", "read .env again for what modules see, then pick up changed module files",
            Commands._reload_settings,
            "A setting modules read (their config, REQUIRES) counts from now on; AutoHome's own\n"
            "settings (AUTOHOME_..., PUSHOVER_...) are named, and count from the next restart."),
    Command("status", "version, uptime, next tick, threads, backlog, notifications", Commands._status),
    Command("notifications", "pending, sent and failed notifications, newest first",
            Commands._notifications),
    Command("notifications read ID", "one notification whole: its fields, tries, times and error",
            Commands._read_notification),
    Command("notifications resend ID", "queue a failed, uncertain or undeliverable notification again",
            Commands._resend_notification),
    Command("notifications drop ID", "give up on a pending notification (it becomes failed)",
            Commands._drop_notification,
            "For a message its channel keeps failing, which holds up the ones after it on that\n"
            "channel; 'notifications resend ID' queues it again."),
    Command("notify test [MESSAGE]", "queue a test notification to your phone", Commands._notify_test,
            "Test mode keeps it and shows it instead (start with -t --notify to send).",
            page="notify-test"),
    Command("log [N] [-f]", f"the last N entries of the log, a traceback being one (default 20, at "
            f"most {MAX_LOG_LINES}); -f: then follow it until Ctrl-C or Enter", Commands._log,
            "Following shows each new entry as it is written; Ctrl-C or Enter goes back to the "
            "prompt.", _follow_flag),
    Command("complete TEXT", "the words that could come next after TEXT (for a client's tab key)",
            Commands._complete, "Quote TEXT to keep a trailing space: complete \"modules read \"."),
    Command("quit", "close this connection", Commands._quit, aliases=("exit", "logout")),
    Command("shutdown", "stop AutoHome (running modules may finish)", Commands._shutdown,
            "Running modules get AUTOHOME_SHUTDOWN_GRACE_SECONDS; what waits in the backlog is "
            "dropped."),
)

BY_WORDS = {tuple(name.split()): command for command in COMMANDS
             for name in (" ".join(command.words), *command.aliases)}
NAMES = sorted({words[0] for words in BY_WORDS if words[0].isalpha()})  # what a line may start with
MODULE_ACTIONS = sorted(words[1] for words in BY_WORDS if len(words) == 2 and words[0] == "modules")
PAGE_ACTIONS = {command.page: command for command in COMMANDS if command.page}


def find(words: list[str]) -> tuple[Command | None, list[str]]:
    """The command a line's words name (two words before one), and its arguments."""
    if len(words) > 1:
        command = BY_WORDS.get((words[0].lower(), words[1].lower()))
        if command is not None:
            return command, words[2:]
    return BY_WORDS.get((words[0].lower(),)), words[1:]

