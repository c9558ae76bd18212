"""The shape issue #11 set for the code, kept: small files, a small Main, one reader of time."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "autohome"


def test_no_file_is_over_300_lines_and_main_is_under_150() -> None:
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
             for path in PACKAGE.rglob("*.py")}
    assert {name: size for name, size in sizes.items() if size > 300} == {}
    app = (PACKAGE / "app.py").read_text(encoding="utf-8")
    main_class = app[app.index("class Main"):app.index("\ndef ", app.index("class Main"))]
    assert len(main_class.splitlines()) < 150


def test_only_clock_py_reads_the_time() -> None:
    reads = re.compile(r"datetime\.now\(|time\.time\(|time\.monotonic\(|time\.perf_counter\(")
    readers = sorted(path.name for path in PACKAGE.rglob("*.py")
                     if path.name != "clock.py" and reads.search(path.read_text(encoding="utf-8")))
    assert readers == []
