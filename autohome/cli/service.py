"""`autohome service install|uninstall|status`: start AutoHome at login, restart it on failure.

For the current user, without administrator rights: a systemd user unit on Linux, a launchd
agent on macOS; on Windows, the Task Scheduler command to run is printed.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
from typing import IO

from autohome.cli.command import Streams
from autohome.config import read_env_file

UNIT_NAME = "autohome.service"
AGENT_LABEL = "com.autohome.agent"
TASK_NAME = "AutoHome"

# Runs a service-manager command: its exit code and what it said on stderr; None when the
# command is not available here.
Runner = Callable[[Sequence[str]], "tuple[int, str] | None"]
NO_SERVICE = ("without a service, start it in the background from this folder: "
              "nohup .venv/bin/python main.py >/dev/null 2>&1 &")


@dataclass(frozen=True)
class ServicePlan:
    """Where the service file goes, what it says, and the commands around it."""

    kind: str  # systemd, launchd, schtasks
    path: Path | None
    content: str
    install: list[list[str]] = field(default_factory=list)
    uninstall: list[list[str]] = field(default_factory=list)
    status: list[list[str]] = field(default_factory=list)


def _arguments(python: PurePath, env_file: Path | None) -> list[str]:
    args = [str(python), "-m", "autohome"]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    return args


def _quote_systemd(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in ' "\\') else arg


def systemd_plan(home: Path, python: Path, project: Path, env_file: Path | None,
                 config_home: Path | None = None, stop_timeout_s: int = 30) -> ServicePlan:
    """A systemd user unit: starts at login, restarts on failure."""
    path = (config_home or home / ".config") / "systemd" / "user" / UNIT_NAME
    exec_start = " ".join(_quote_systemd(arg) for arg in _arguments(python, env_file))
    content = f"""[Unit]
Description=AutoHome personal server
Documentation=file://{project / "README.md"}

[Service]
Type=simple
WorkingDirectory={project}
ExecStart={exec_start}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=10
TimeoutStopSec={stop_timeout_s}

[Install]
WantedBy=default.target
"""
    return ServicePlan(
        "systemd", path, content,
        install=[["systemctl", "--user", "daemon-reload"],
                 ["systemctl", "--user", "enable", "--now", UNIT_NAME]],
        uninstall=[["systemctl", "--user", "disable", "--now", UNIT_NAME]],
        status=[["systemctl", "--user", "status", "--no-pager", UNIT_NAME]],
    )


def launchd_plan(home: Path, python: Path, project: Path, env_file: Path | None) -> ServicePlan:
    """A launchd agent: starts at login, restarted when it exits with an error."""
    path = home / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"
    agent = {
        "Label": AGENT_LABEL,
        "ProgramArguments": _arguments(python, env_file),
        "WorkingDirectory": str(project),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "StandardErrorPath": str(project / "logs" / "service.err"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    content = plistlib.dumps(agent).decode()
    return ServicePlan(
        "launchd", path, content,
        install=[["launchctl", "load", "-w", str(path)]],
        uninstall=[["launchctl", "unload", "-w", str(path)]],
        status=[["launchctl", "list", AGENT_LABEL]],
    )


def schtasks_plan(python: PurePath, project: PurePath, env_file: Path | None) -> ServicePlan:
    """Windows: the Task Scheduler command, printed for the user to run."""
    python = PureWindowsPath(python)
    pythonw = python.with_name("pythonw.exe") if python.name.lower() == "python.exe" else python
    args = " ".join(f'\\"{a}\\"' if " " in a else a for a in _arguments(pythonw, env_file))
    command = (f'schtasks /Create /TN {TASK_NAME} /SC ONLOGON /RL LIMITED /F '
               f'/TR "cmd /c cd /d \\"{project}\\" && {args}"')
    return ServicePlan(
        "schtasks", None, command,
        uninstall=[["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]],
        status=[["schtasks", "/Query", "/TN", TASK_NAME]],
    )


def plan_for(platform: str, home: Path, python: Path, project: Path, env_file: Path | None,
             config_home: Path | None = None) -> ServicePlan:
    """The service plan for this kind of machine."""
    if platform == "darwin":
        return launchd_plan(home, python, project, env_file)
    if platform == "win32":
        return schtasks_plan(python, project, env_file)
    return systemd_plan(home, python, project, env_file, config_home)


def _run_all(commands: list[list[str]], run: Runner, err: IO[str], then: str) -> bool:
    """Run the commands in turn; at the first that cannot run or fails, say why on `err`,
    with `then`: what is in place, and the way on."""
    for command in commands:
        result = run(command)
        shown = " ".join(command)
        if result is None:
            err.write(f"autohome service: {command[0]} is not available here: {then}\n")
            return False
        code, said = result
        if code != 0:
            cause = said.strip().splitlines()[-1] if said.strip() else f"exit code {code}"
            err.write(f"autohome service: '{shown}' failed: {cause}{_hint(command[0], said)}; {then}\n")
            return False
    return True


def _hint(program: str, said: str) -> str:
    """Why a service manager is unreachable, where it is a known case."""
    if program == "systemctl" and ("bus" in said.lower() or "XDG_RUNTIME_DIR" in said):
        return (" (no user systemd in this session: log in on the machine itself, or "
                "`loginctl enable-linger $USER`, then try again)")
    return ""


def install(plan: ServicePlan, run: Runner, out: IO[str], err: IO[str], print_only: bool = False) -> int:
    """Write the service file and enable it (or only show it); return an exit code."""
    if print_only or plan.path is None:
        out.write(plan.content + ("\n" if not plan.content.endswith("\n") else ""))
        if plan.path is not None:
            out.write(f"# would be written to {plan.path}, then: "
                      + "; ".join(" ".join(c) for c in plan.install) + "\n")
        elif not print_only:
            out.write("# run the command above in a terminal to start AutoHome at log-on\n")
        return 0
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    plan.path.write_text(plan.content, encoding="utf-8")
    out.write(f"wrote {plan.path}\n")
    if not _run_all(plan.install, run, err, f"the service file is in place, and `autohome service install` "
                    f"finishes once that works; {NO_SERVICE}"):
        return 1
    out.write("AutoHome will start at every login and restart if it fails.\n")
    return 0


def uninstall(plan: ServicePlan, run: Runner, out: IO[str], err: IO[str], print_only: bool = False) -> int:
    """Disable the service and remove its file (or only show how)."""
    if print_only or plan.path is None:
        for command in plan.uninstall:
            out.write(" ".join(command) + "\n")
        if plan.path is not None:
            out.write(f"rm {plan.path}\n")
        return 0
    if not plan.path.exists():
        out.write(f"no service installed ({plan.path} does not exist)\n")
        return 0
    ok = _run_all(plan.uninstall, run, err, "the service file is removed all the same; a service "
                  "still running stops at the next log-out")
    plan.path.unlink()
    out.write(f"removed {plan.path}\n")
    return 0 if ok else 1


def status(plan: ServicePlan, run: Runner, out: IO[str], err: IO[str], print_only: bool = False) -> int:
    """Say whether the service is installed, and what the service manager says of it."""
    if print_only:
        for command in plan.status:
            out.write(" ".join(command) + "\n")
        return 0
    if plan.path is not None:
        installed = plan.path.exists()
        out.write(f"{'installed' if installed else 'not installed'}: {plan.path}\n")
        if not installed:
            return 3
    for command in plan.status:
        result = run(command)
        if result is None or result[1].strip():  # (an inactive unit is an answer, said on stdout)
            cause = "not available here" if result is None else result[1].strip().splitlines()[-1]
            err.write(f"autohome service: '{' '.join(command)}' failed: {cause}"
                      f"{_hint(command[0], result[1] if result else '')}; the service manager cannot say "
                      "how the service is\n")
            return 1
    return 0


def run_command(command: Sequence[str], out: IO[str],
                environ: Mapping[str, str] | None = None) -> tuple[int, str] | None:
    """Run a service-manager command found on `environ`'s PATH: what it prints goes to `out`,
    and its exit code and what it said on stderr are returned; None if there is no such
    command."""
    env = dict(os.environ if environ is None else environ)
    found = shutil.which(command[0], path=env.get("PATH"))
    if found is None:
        return None
    done = subprocess.run([found, *command[1:]], check=False, env=env, capture_output=True, text=True,
                          errors="replace")
    out.write(done.stdout)
    return done.returncode, done.stderr


def service_command(args: argparse.Namespace, streams: Streams) -> int:
    """`autohome service install|uninstall|status [--print] [--env-file FILE]`."""
    out, environ = streams.stdout, streams.environ
    project = streams.workdir.resolve()
    env_file = getattr(args, "env_file", None) or (project / ".env" if (project / ".env").is_file() else None)
    if env_file is not None:
        env_file = env_file.resolve()
    config_home = environ.get("XDG_CONFIG_HOME")
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    plan = plan_for(sys.platform, home, Path(sys.executable), project, env_file,
                    Path(config_home) if config_home else None)
    if args.action == "install" and not _is_administrator():
        _warn_about_port_23(env_file, environ, out)
    action = {"install": install, "uninstall": uninstall, "status": status}
    return action[args.action](plan, lambda command: run_command(command, out, environ), out, streams.stderr,
                               args.print_only)


def _is_administrator() -> bool:
    """Whether this process may bind port 23 (root on POSIX)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _warn_about_port_23(env_file: Path | None, environ: Mapping[str, str], out: IO[str]) -> None:
    """A service runs as you, without the rights to port 23: say where its console will be."""
    values = read_env_file(env_file)[0] if env_file is not None else {}
    port = (environ.get("AUTOHOME_CONSOLE_PORT") or values.get("AUTOHOME_CONSOLE_PORT") or "").strip()
    if port in ("", "23"):
        out.write("warning: the service's console would use port 23, which needs administrator rights: "
                  + ("it will listen on 2323 instead" if not port else "it will have no console")
                  + "; set AUTOHOME_CONSOLE_PORT in .env to choose the port\n")

