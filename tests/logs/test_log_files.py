"""current.log and test mode's test.log, archiving with -n, colour, and the per-module recent lines."""

from __future__ import annotations

import io
import logging
import re
import threading
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient
from support.modules import write_module
from support.processes import run_autohome

from autohome.logs.archive import archive_current_log, first_timestamp
from autohome.logs.setup import setup_logging
from autohome.logs.tree import get_logger


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_module(tmp_path / "modules", "hello", """
        INTERVAL = 60
        def run(log, notify):
            log.info("hello from the module")
    """)
    (tmp_path / "logs").mkdir()
    return tmp_path


def test_new_archives_current_log_under_its_first_timestamp(workdir: Path, daemon_factory) -> None:
    old = b"preamble without a time\n2025-03-04 05:06:07.123 INFO [x] y: first\n\xff raw bytes\n"
    (workdir / "logs" / "current.log").write_bytes(old)
    daemon = daemon_factory(workdir, "-n", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("hello from the module")
    client.sock.sendall(b"shutdown\r\n")
    assert daemon.wait() == 0
    archive = workdir / "logs" / "2025-03-04_05-06-07.log"
    assert archive.read_bytes() == old
    current = (workdir / "logs" / "current.log").read_text()
    assert "archived the previous log as" in current and "2025-03-04_05-06-07.log" in current
    assert "hello from the module" in current and "first" not in current


def test_test_mode_logs_to_test_log_and_new_archives_only_that(workdir: Path) -> None:
    logs = workdir / "logs"
    daemon_lines = b"2025-01-01 00:00:00.000 INFO [main] autohome.main: the daemon's own line\n"
    (logs / "current.log").write_bytes(daemon_lines)
    (logs / "test.log").write_bytes(b"2025-03-04 05:06:07.123 INFO [x] y: an earlier test\n")
    result = run_autohome(workdir, "-n", "-t", "--no-console", stdin="")
    assert result.returncode == 0, result.stderr
    assert (logs / "current.log").read_bytes() == daemon_lines  # virtual time never mixes in
    assert b"an earlier test" in (logs / "test-2025-03-04_05-06-07.log").read_bytes()
    test_log = (logs / "test.log").read_text()
    assert "hello from the module" in test_log and "test-2025-03-04_05-06-07.log" in test_log
    assert sorted(p.name for p in logs.iterdir()) == ["current.log", "test-2025-03-04_05-06-07.log",
                                                     "test.log"]


def test_new_never_overwrites_an_archive(workdir: Path) -> None:
    logs = workdir / "logs"
    line = b"2025-03-04 05:06:07 INFO same second\n"
    (logs / "test-2025-03-04_05-06-07.log").write_bytes(b"older archive")
    (logs / "test-2025-03-04_05-06-07-1.log").write_bytes(b"even older")
    (logs / "test.log").write_bytes(line)
    assert run_autohome(workdir, "-n", "-t", "--no-console").returncode == 0
    assert (logs / "test-2025-03-04_05-06-07.log").read_bytes() == b"older archive"
    assert (logs / "test-2025-03-04_05-06-07-1.log").read_bytes() == b"even older"
    assert (logs / "test-2025-03-04_05-06-07-2.log").read_bytes() == line


def test_new_names_a_log_without_timestamps_by_a_unique_id(workdir: Path) -> None:
    logs = workdir / "logs"
    (logs / "test.log").write_bytes(b"no time here\n")
    assert run_autohome(workdir, "-n", "-t", "--no-console").returncode == 0
    [archive] = [p for p in logs.iterdir() if p.name.startswith("test-archive-")]
    assert re.fullmatch(r"test-archive-[0-9a-f]{12}\.log", archive.name)
    assert archive.read_bytes() == b"no time here\n"


def test_without_new_lines_are_appended(workdir: Path) -> None:
    current = workdir / "logs" / "test.log"
    current.write_text("2025-01-01 00:00:00 INFO earlier run\n")
    assert run_autohome(workdir, "-t", "--no-console").returncode == 0
    text = current.read_text()
    assert text.startswith("2025-01-01 00:00:00 INFO earlier run\n") and "hello from the module" in text
    assert sorted(p.name for p in (workdir / "logs").iterdir()) == ["test.log"]


def test_new_with_no_current_log_just_starts(tmp_path: Path) -> None:
    assert archive_current_log(tmp_path) is None
    assert first_timestamp(_write(tmp_path / "x.log", b"")) is None


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_line_holds_time_level_thread_logger_and_message(workdir: Path) -> None:
    assert run_autohome(workdir, "-t", "--no-console").returncode == 0
    line = next(line for line in (workdir / "logs" / "test.log").read_text().splitlines()
                if "hello from the module" in line)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO    \[module:hello\] "
        r"autohome\.modules\.hello: hello from the module", line)


def test_run_lines_come_from_the_module_thread_in_order_with_its_own_lines(workdir: Path) -> None:
    # "started" and "finished" take a short cut to the log writer; they must not look it.
    from support.processes import clean_env

    env = clean_env(AUTOHOME_LOG_LEVEL="DEBUG")  # "started" is a DEBUG line
    assert run_autohome(workdir, "-t", "--no-console", env=env).returncode == 0
    lines = [line for line in (workdir / "logs" / "test.log").read_text().splitlines()
             if "[module:hello]" in line]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert len(lines) == 3, lines
    assert re.fullmatch(stamp + r" DEBUG   \[module:hello\] autohome\.main: module hello started", lines[0])
    assert "hello from the module" in lines[1]
    assert re.fullmatch(stamp + r" INFO    \[module:hello\] autohome\.main: module hello finished in "
                        r"\d+\.\d{3}s", lines[2])
    assert lines[0][:23] <= lines[1][:23] <= lines[2][:23]


def test_at_warning_level_runs_write_no_lines(workdir: Path) -> None:
    from support.processes import clean_env

    result = run_autohome(workdir, "-t", "--no-console", env=clean_env(AUTOHOME_LOG_LEVEL="WARNING"))
    assert result.returncode == 0
    assert "module hello" not in (workdir / "logs" / "test.log").read_text()


def test_module_start_finish_with_duration_and_ticks_at_debug(workdir: Path) -> None:
    from support.processes import clean_env

    result = run_autohome(workdir, "-t", "--no-console", env=clean_env(AUTOHOME_LOG_LEVEL="DEBUG"))
    text = (workdir / "logs" / "test.log").read_text()
    assert re.search(r"DEBUG .* autohome\.main: tick at ", text)
    assert re.search(r"DEBUG .* autohome\.main: module hello started", text)
    assert re.search(r"INFO .* autohome\.main: module hello finished in \d+\.\d{3}s", text)
    assert result.returncode == 0


def test_terminal_colour_only_when_asked(tmp_path: Path) -> None:
    for colour in (True, False):
        stream = io.StringIO()
        setup = setup_logging(tmp_path, terminal=stream, colour=colour)
        try:
            get_logger("autohome.test").error("red alert")
        finally:
            setup.close()
        assert ("\x1b[" in stream.getvalue()) is colour
    assert "\x1b[" not in (tmp_path / "current.log").read_text()


def test_piped_output_has_no_colour(workdir: Path) -> None:
    result = run_autohome(workdir, "-t", "--no-console")
    assert "\x1b[" not in result.stderr and "hello from the module" in result.stderr


@pytest.mark.parametrize("kind", ["plain", "exception", "stack"])
def test_the_fast_line_formatter_writes_what_line_format_would(kind: str) -> None:
    import sys

    from autohome.logs.setup import DATE_FORMAT, LINE_FORMAT, LineFormatter

    logger = get_logger("autohome.modules.x")
    exc_info, stack = None, None
    if kind == "exception":
        try:
            raise ValueError("sensor unplugged")
        except ValueError:
            exc_info = sys.exc_info()
    if kind == "stack":
        stack = "Stack (most recent call last):\n  File here"
    record = logger.makeRecord(logger.name, logging.ERROR, "x.py", 3, "run %s failed: %d%%", ("x", 5),
                               exc_info, sinfo=stack)
    expected = logging.Formatter(LINE_FORMAT, DATE_FORMAT).format(record)
    assert LineFormatter().format(record) == expected


def test_recent_lines_keeps_the_lines_of_modules_only() -> None:
    from autohome.logs.setup import RecentLines

    recent = RecentLines()
    other = logging.LogRecord("autohome.main", logging.INFO, "", 0, "module %s finished", ("x",), None)
    mine = logging.LogRecord("autohome.modules.x", logging.INFO, "", 0, "hello", (), None)
    recent.handle(other)  # not a module's line: not kept
    recent.handle(mine)
    assert [line[-5:] for line in recent.lines("x")] == ["hello"] and recent.lines("main") == []


def test_the_log_writer_survives_a_handler_that_raises(tmp_path: Path) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            pass

        def flush(self) -> None:
            raise OSError(28, "No space left on device")

    setup = setup_logging(tmp_path / "logs")
    setup.writer.handlers.append(Broken())
    logger = get_logger("autohome.test")
    try:
        logger.info("first")
        setup.writer.flush()
        logger.info("second, after the failure")
        assert setup.writer.flush(), "the log writer stopped"
    finally:
        setup.writer.handlers.pop()
        setup.close()
    assert "second, after the failure" in (tmp_path / "logs" / "current.log").read_text()


def test_a_log_folder_that_vanishes_does_not_stop_the_log_writer(tmp_path: Path) -> None:
    import shutil

    log_dir = tmp_path / "logs"
    setup = setup_logging(log_dir, max_bytes=200, keep=2)
    logger = get_logger("autohome.test")
    try:
        logger.info("before")
        assert setup.writer.flush()
        shutil.rmtree(log_dir)  # archiving and reopening current.log now fail
        for number in range(5):
            logger.info("while the folder is gone %d %s", number, "x" * 100)
        assert setup.writer.flush()
        log_dir.mkdir(exist_ok=True)  # (AutoHome made it again already)
        logger.info("after the folder is back")
        assert setup.writer.flush(), "the log writer stopped"
    finally:
        setup.close()
    written = "".join(path.read_text() for path in log_dir.glob("*.log"))  # current.log or an archive
    assert "after the folder is back" in written and "while the folder is gone 4" in written


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_loses_only_its_lines_and_says_so_when_space_returns(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    current = log_dir / "current.log"
    current.symlink_to("/dev/full")  # every write: No space left on device
    setup = setup_logging(log_dir)
    logger = get_logger("autohome.test")
    try:
        for number in range(3):
            logger.info("lost line %d", number)
            assert setup.writer.flush(), "the log writer stopped"
        current.unlink()  # space is back
        logger.info("first line after the disk came back")
        assert setup.writer.flush()
    finally:
        setup.close()
    lines = current.read_text().splitlines()
    assert "3 log line(s) could not be written to current.log since" in lines[0]
    assert "No space left on device" in lines[0] and "WARNING" in lines[0]
    assert lines[1].endswith("first line after the disk came back") and len(lines) == 2


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_autohome_on_a_full_disk_keeps_running_and_exits_0(workdir: Path) -> None:
    (workdir / "logs").mkdir(exist_ok=True)
    (workdir / "logs" / "test.log").symlink_to("/dev/full")
    result = run_autohome(workdir, "-t", "--no-console", stdin="\n\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "hello from the module" in result.stderr and "AutoHome stopped" in result.stderr


def test_lines_logged_faster_than_written_are_dropped_oldest_first_and_counted() -> None:
    from autohome.logs.queue import LogQueue
    from autohome.logs.writer import LogWriter

    class SlowDisk(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.release, self.seen = threading.Event(), []

        def emit(self, record: logging.LogRecord) -> None:
            self.release.wait(WAIT_S)
            self.seen.append(record.getMessage())

    records, disk = LogQueue(max_bytes=2_000_000), SlowDisk()
    writer = LogWriter(records, [disk])
    writer.start()
    try:
        for number in range(100):  # 10 MB of lines while the disk takes none
            message = f"{number:03d} " + "x" * 100_000
            records.put(logging.LogRecord("autohome.test", logging.INFO, "", 0, message, None, None))
        assert records.bytes_waiting <= 2_000_000  # what waits stays bounded
        disk.release.set()
        assert writer.flush()
    finally:
        writer.stop()
    notice = next(line for line in disk.seen if "log line(s) dropped" in line)
    assert int(notice.split()[0]) >= 80
    kept = [int(line[:3]) for line in disk.seen if line[:3].isdigit()]
    assert kept[-1] == 99 and len(kept) <= 20  # the newest kept, the oldest dropped


def test_a_run_writes_one_line_of_its_own_and_a_console_visit_none(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "quiet", "INTERVAL = 60\ndef run(log, notify):\n    pass\n")
    write_module(tmp_path / "modules", "fails",
                 "INTERVAL = 60\ndef run(log, notify):\n    raise ValueError('no')\n")
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    daemon.wait_for("module fails failed")
    client = ConsoleClient(daemon.console_port)
    client.command("status")
    client.close()
    daemon.send("1m\n")  # two more ticks: the modules run again at the second
    daemon.close_stdin()
    assert daemon.wait() == 0
    lines = (tmp_path / "logs" / "test.log").read_text().splitlines()
    quiet = [line for line in lines if "[module:quiet]" in line]
    assert len(quiet) == 2
    assert all(re.search(r"INFO .* module quiet finished in \d+\.\d{3}s$", line) for line in quiet)
    assert not [line for line in lines if "console client" in line]  # a visit is a DEBUG line
    stamps = [line[:23] for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert stamps == sorted(stamps)  # the log reads in time order


def test_a_module_s_traceback_starts_in_the_module(workdir: Path) -> None:
    write_module(workdir / "modules", "fails",
                 "INTERVAL = 60\ndef run(log, notify):\n    raise ValueError('no')\n")
    assert run_autohome(workdir, "-t", "--no-console").returncode == 0
    text = (workdir / "logs" / "test.log").read_text()
    traceback = text[text.index("Traceback"):text.index("ValueError: no")]
    assert "fails.py" in traceback and "autohome" not in traceback  # no frame of AutoHome's own


def test_an_isolated_module_s_traceback_starts_in_the_module_too(workdir: Path) -> None:
    write_module(workdir / "modules", "fails", "ISOLATE = True\nINTERVAL = 60\ndef run(log, notify):\n"
                 "    raise ValueError('no')\n")
    assert run_autohome(workdir, "-t", "--no-console").returncode == 0
    text = (workdir / "logs" / "test.log").read_text()
    traceback = text[text.index("Traceback"):text.index("ValueError: no")]
    assert "fails.py" in traceback and "autohome" not in traceback, traceback
