"""The README's front door: exactly two commands, and CI runs the second."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```sh\n")[1:3]
    install, test = (block.split("\n```")[0].strip() for block in blocks)
    assert "main.py" in install and "pytest" in test
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test
