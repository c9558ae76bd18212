"""The README's front door: exactly two commands, CI runs the second, and the tour and the
first module do what the README shows, line by line, run as written on a fresh copy."""

from __future__ import annotations

import io
import re
import shlex
import shutil
from pathlib import Path

from support.console import ConsoleClient
from support.processes import clean_env, run_autohome

from autohome import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?( [A-Z]{3,4}\b)?")


def test_ci_runs_the_readme_test_command() -> None:
    blocks = README.split("```sh\n")[1:3]
    install, test = (block.split("\n```")[0].strip() for block in blocks)
    assert "main.py" in install and "pytest" in test
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    return README[start:README.index("\n## ", start + 1)]


def _blocks(text: str, kind: str) -> list[str]:
    return [block.split("\n```")[0] for block in text.split(f"```{kind}\n")[1:]]


def _shows(actual: str, expected: list[str], workdir: Path) -> bool:
    """Whether the output has the README's lines, in order; `...` stands for any lines."""
    lines = [TIME.sub("<time>", line.replace(str(workdir), "/home/you/autohome")).rstrip()
             for line in actual.splitlines()]
    wanted = [TIME.sub("<time>", line).rstrip() for line in expected]
    at = 0
    for index, line in enumerate(wanted):
        if line.strip() == "...":
            continue
        skipping = index > 0 and wanted[index - 1].strip() == "..."
        while skipping and at < len(lines) and lines[at] != line:
            at += 1
        if at >= len(lines) or lines[at] != line:
            return False
        at += 1
    return wanted[-1].strip() == "..." or at == len(lines)


def _shut_down(daemon: object) -> None:
    """The console's `shutdown`, from another terminal; AutoHome exits 0."""
    client = ConsoleClient(daemon.console_port)  # type: ignore[attr-defined]
    client.sock.sendall(b"shutdown\r\n")
    assert daemon.wait() == 0  # type: ignore[attr-defined]
    client.close()


def _fresh_copy(tmp_path: Path) -> Path:
    """The folder a fresh clone gives: the bundled modules."""
    shutil.copytree(ROOT / "modules", tmp_path / "modules", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_first_module_does_what_the_readme_shows(tmp_path: Path, daemon_factory) -> None:
    workdir = _fresh_copy(tmp_path)
    env = clean_env(AUTOHOME_TIMEZONE="Europe/Berlin")
    section = _section("Your first module, end to end")
    [create] = _blocks(section, "sh")
    assert run_autohome(workdir, *shlex.split(create)[1:], env=env).returncode == 0
    [source] = _blocks(section, "python")
    (workdir / "modules" / "plants.py").write_text(source + "\n")
    daemon = None
    for block in _blocks(section, "console"):
        commands: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:].split("  #")[0].strip(), []))
            else:
                commands[-1][1].append(line)
        for command, expected in commands:
            if command.startswith("echo ") and ">> .env" in command:
                with (workdir / ".env").open("a") as env_file:
                    env_file.write(shlex.split(command.split(">>")[0])[1] + "\n")
                continue
            stdin = ""
            if "| .venv/bin/autohome console" in command:  # "from another terminal": AutoHome runs
                daemon = daemon or daemon_factory(workdir, "--port", "0", env=env)
                stdin = shlex.split(command.split("|")[0])[1] + "\n"
                command = command.split("| ")[1]
            argv = shlex.split(command)[1:]
            out, err = io.StringIO(), io.StringIO()
            console_env = {**env, "AUTOHOME_CONSOLE_PORT": str(daemon.console_port)} if daemon else env
            code = cli.main(argv, environ=console_env, stdin=io.StringIO(stdin), stdout=out, stderr=err,
                            workdir=workdir)
            assert code == 0, (command, err.getvalue())
            assert _shows(out.getvalue(), expected, workdir), (command, out.getvalue(), expected)
            if command == ".venv/bin/autohome run plants":  # "Run it twice more and the third run..."
                said = section.split("the third run says what it would send:\n`")[1].split("`")[0]
                run_autohome(workdir, "run", "plants", env=env)
                assert said in run_autohome(workdir, "run", "plants", env=env).stdout
    assert daemon is not None
    _shut_down(daemon)


def test_the_tour_runs_as_written(tmp_path: Path, daemon_factory) -> None:
    workdir = _fresh_copy(tmp_path)
    env = clean_env()
    [tour] = _blocks(_section("A short tour"), "sh")
    daemon = None
    for line in tour.splitlines():
        command = line.split("  #")[0].strip()
        argv = shlex.split(command)
        if argv[0] == "telnet":  # the same console from a telnet client (tests/console: the real one)
            client = ConsoleClient(daemon.console_port)  # type: ignore[union-attr]
            assert "modules" in client.command("help")
            client.close()
            continue
        args = argv[2:] if argv[1] == "main.py" else argv[1:]
        if args in ([], ["-n"]):  # run AutoHome: until shut down from another terminal
            if daemon is not None:
                _shut_down(daemon)
            daemon = daemon_factory(workdir, *args, "--port", "0", env=env)
            daemon.wait_for("console listening")
            continue
        stdin = "\n\n" if args == ["-t"] else ""
        if args[:1] in (["log"], ["console"]):  # `log -f` until Ctrl-C: its last entries here
            args = ["log"] if args[0] == "log" else args
            stdin = "status\n" if args == ["console"] else stdin
        port = {"AUTOHOME_CONSOLE_PORT": str(daemon.console_port)} if daemon else {}
        result = run_autohome(workdir, *args, stdin=stdin, env={**env, **port})
        assert result.returncode == 0, (command, result.stderr)
    assert (workdir / "modules" / "plants.py").is_file()
    assert list((workdir / "logs").glob("20*.log")), "main.py -n archived the log"
    assert (workdir / "logs" / "test.log").is_file()
    _shut_down(daemon)
