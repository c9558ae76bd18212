"""`autohome service`: the generated files, and an install/uninstall round trip in a temporary home."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import Result, clean_env, run_autohome

from autohome.cli.service import launchd_plan, schtasks_plan, systemd_plan

PYTHON = Path(sys.executable)


def test_the_systemd_unit_points_at_this_python_project_and_env(tmp_path: Path) -> None:
    plan = systemd_plan(tmp_path / "home", PYTHON, tmp_path / "my project", tmp_path / "my project" / ".env")
    assert plan.path == tmp_path / "home" / ".config" / "systemd" / "user" / "autohome.service"
    assert f"WorkingDirectory={tmp_path / 'my project'}" in plan.content
    assert f'ExecStart={PYTHON} -m autohome --env-file "{tmp_path / "my project" / ".env"}"' in plan.content
    assert "Restart=on-failure" in plan.content and "WantedBy=default.target" in plan.content


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parent.parent.parent
    plan = systemd_plan(tmp_path, PYTHON, project, None)
    unit = tmp_path / "autohome.service"
    unit.write_text(plan.content)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    unit.write_text(plan.content.replace("Restart=on-failure", "Restart=sometimes"))
    broken = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "restart specifier" in broken.stderr  # the check can fail


def test_the_launchd_agent_is_a_valid_plist(tmp_path: Path) -> None:
    plan = launchd_plan(tmp_path, PYTHON, tmp_path / "proj", None)
    assert plan.path == tmp_path / "Library" / "LaunchAgents" / "com.autohome.agent.plist"
    agent = plistlib.loads(plan.content.encode())
    assert agent["ProgramArguments"] == [str(PYTHON), "-m", "autohome"]
    assert agent["WorkingDirectory"] == str(tmp_path / "proj")
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}


def test_windows_gets_a_task_scheduler_command() -> None:
    plan = schtasks_plan(Path(r"C:\Python311\python.exe"), Path(r"C:\Users\me\autohome"), None)
    assert plan.path is None
    assert plan.content.startswith("schtasks /Create /TN AutoHome /SC ONLOGON /RL LIMITED /F")
    assert r"pythonw.exe -m autohome" in plan.content and r"cd /d \"C:\Users\me\autohome\"" in plan.content


@pytest.mark.skipif(sys.platform != "linux", reason="the systemd round trip")
def test_install_status_uninstall_round_trip_in_a_temporary_home(tmp_path: Path) -> None:
    home, project, bin_dir = tmp_path / "home", tmp_path / "project", tmp_path / "bin"
    for folder in (home, project / "modules", bin_dir):
        folder.mkdir(parents=True)
    (project / ".env").write_text("AUTOHOME_CONSOLE_PORT=2323\n")
    calls = tmp_path / "systemctl-calls"
    fake = bin_dir / "systemctl"  # stands in for the service manager, which needs a login session
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = clean_env(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("XDG_CONFIG_HOME", None)

    def service(*args: str) -> Result:
        return run_autohome(project, "service", *args, env=env)

    printed = service("install", "--print")
    unit = home / ".config" / "systemd" / "user" / "autohome.service"
    assert printed.returncode == 0 and "ExecStart=" in printed.stdout and not unit.exists()
    assert "port 23" not in printed.stdout  # the .env chose 2323
    (project / ".env").write_text("PUSHOVER_TOKEN=\n")
    warned = "warning: the service's console would use port 23" in service("install", "--print").stdout
    assert warned is (os.geteuid() != 0)  # root may bind port 23: no warning then
    (project / ".env").write_text("AUTOHOME_CONSOLE_PORT=2323\n")

    assert service("status").returncode == 3
    installed = service("install")
    assert installed.returncode == 0, installed.stderr
    assert f"--env-file {project / '.env'}" in unit.read_text()
    assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now autohome.service"]
    status = service("status")
    assert status.returncode == 0 and f"installed: {unit}" in status.stdout

    removed = service("uninstall")
    assert removed.returncode == 0 and not unit.exists()
    assert calls.read_text().splitlines()[-1] == "--user disable --now autohome.service"
    assert "no service installed" in service("uninstall").stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the systemd round trip")
def test_without_a_user_systemd_each_service_command_says_why_and_the_way_on(tmp_path: Path) -> None:
    home, project, bin_dir = tmp_path / "home", tmp_path / "project", tmp_path / "bin"
    for folder in (home, project / "modules", bin_dir):
        folder.mkdir(parents=True)
    fake = bin_dir / "systemctl"  # as systemctl answers without a user session bus
    fake.write_text('#!/bin/sh\necho "Failed to connect to bus: No medium found" >&2\nexit 1\n')
    fake.chmod(0o755)
    env = clean_env(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("XDG_CONFIG_HOME", None)

    installed = run_autohome(project, "service", "install", env=env)
    assert installed.returncode == 1
    assert "'systemctl --user daemon-reload' failed: Failed to connect to bus" in installed.stderr
    assert "no user systemd in this session" in installed.stderr and "nohup" in installed.stderr
    status = run_autohome(project, "service", "status", env=env)
    assert status.returncode == 1 and "Failed to connect to bus" in status.stderr
    removed = run_autohome(project, "service", "uninstall", env=env)
    assert removed.returncode == 1 and "removed" in removed.stdout
    assert "in place" not in removed.stdout + removed.stderr  # it is not: it was removed
    assert "removed all the same" in removed.stderr


def test_the_user_unit_waits_for_nothing_it_cannot_see(tmp_path: Path) -> None:
    plan = systemd_plan(tmp_path, PYTHON, tmp_path / "proj", None)
    assert "network-online.target" not in plan.content  # a user unit cannot order after it
