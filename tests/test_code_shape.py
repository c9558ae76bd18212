"""The shape of the code that is not an import rule (those are import-linter contracts in
pyproject.toml, checked by `lint-imports`): a small top level, a small Main, one reader of
time."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autohome"


def test_the_top_level_holds_at_most_ten_files_and_main_is_under_150_lines() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 10
    app = (PACKAGE / "app.py").read_text(encoding="utf-8")
    main_class = app[app.index("class Main"):app.index("\ndef ", app.index("class Main"))]
    assert len(main_class.splitlines()) < 150


def test_only_clock_py_reads_the_time() -> None:
    reads = re.compile(r"datetime\.now\(|time\.time\(|time\.monotonic\(|time\.perf_counter\(")
    readers = sorted(path.name for path in PACKAGE.rglob("*.py")
                     if path.name != "clock.py" and reads.search(path.read_text(encoding="utf-8")))
    assert readers == []
