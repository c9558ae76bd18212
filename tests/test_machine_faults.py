"""Faults of the machine, not of a module: a wall clock set back or forward, a full disk, a
damaged database, a terminal that stops reading, log files moved under AutoHome."""

from __future__ import annotations

import errno
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient
from support.logs import log_seen
from support.modules import spec, write_module
from support.processes import MAIN, clean_env

from autohome.app import Main, build
from autohome.clock import SystemClock, utc_now
from autohome.config import Config


class SettableWall:
    """A wall clock that runs with the real one until a test sets it back or forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@contextmanager
def running(main: Main) -> Iterator[None]:
    thread = threading.Thread(target=main.run, name="loop", daemon=True)
    thread.start()
    try:
        yield
    finally:
        main.request_stop()
        thread.join(WAIT_S)
        assert not thread.is_alive()


def counting_main(wall: SettableWall, runs: list[datetime], ran: threading.Condition) -> Main:
    def counter(log, notify):
        with ran:
            runs.append(wall())
            ran.notify_all()

    config = Config(console_enabled=False, web_enabled=False, tick=timedelta(seconds=0.25))
    return build(config, SystemClock(wall=wall), [spec("counter", counter, interval_s=0.25)])


def wait_for_runs(runs: list[datetime], ran: threading.Condition, count: int) -> None:
    with ran:
        assert ran.wait_for(lambda: len(runs) >= count, WAIT_S), f"only {len(runs)} runs"


def test_a_wall_clock_set_back_an_hour_stalls_nothing_and_says_by_how_much() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("the clock went back by 1h") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = -timedelta(hours=1)  # an NTP step after waking, a dual-boot clock
        assert said.wait()
        before = len(runs)
        wait_for_runs(runs, ran, before + 2)  # before: no tick for the whole hour
    assert all(moment < runs[0] for moment in runs[before:])


def test_a_wall_clock_set_back_less_than_a_tick_is_noticed_too() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("the clock went back by") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = -timedelta(seconds=40)
        assert said.wait()
        before = len(runs)
        wait_for_runs(runs, ran, before + 2)


def test_a_wall_clock_set_forward_is_a_gap_run_once() -> None:
    wall, runs, ran = SettableWall(), [], threading.Condition()
    main = counting_main(wall, runs, ran)
    with log_seen("woke after a gap of 1d") as said, running(main):
        wait_for_runs(runs, ran, 1)
        wall.offset = timedelta(days=1)
        assert said.wait()
        wait_for_runs(runs, ran, len(runs) + 1)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB filesystem of the test's own (Linux, with the right to mount; else skipped)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, check=False) if sys.platform.startswith("linux") else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip("needs a small filesystem: mount -t tmpfs (Linux, as root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem to the last byte; return the file that does it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (65536, 4096, 1):
            try:
                while True:
                    file.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_stops_no_module_and_is_said_once_then_over(small_disk: Path, tmp_path: Path,
                                                                 daemon_factory) -> None:
    write_module(tmp_path / "modules", "counter", """
        INTERVAL = 30
        def run(log, store):
            count = store.get("count", 0) + 1
            store.set("count", count)
            log.info("counter ran %d", count)
    """)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0", "--data", str(small_disk / "data"),
                            "--logs", str(small_disk / "logs"))
    daemon.wait_for("counter ran 1")
    filler = fill(small_disk)
    for number in (2, 3, 4):  # before: every tick failed while the disk was full
        daemon.send("\n")
        daemon.wait_for(f"counter ran {number}")
    daemon.wait_for_all("AutoHome cannot write its state database .*Modules keep running")
    client = ConsoleClient(daemon.console_port)
    assert "kept in memory" in client.command("status")
    filler.unlink()  # space is back
    daemon.send("\n\n\n")
    daemon.wait_for("the state database .* takes writes again")
    daemon.send("\n")
    daemon.wait_for("counter ran 8")
    notifications = client.command("notifications")
    assert "AutoHome cannot write its state databas" in notifications  # (cut to the column)
    assert "AutoHome writes its state database agai" in notifications
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    lines = "\n".join(daemon.lines)
    assert lines.count("cannot write its state database") == 1 and "the tick at" not in lines
    log = (small_disk / "logs" / "test.log").read_text(encoding="utf-8")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ +\["
    assert not [line for line in log.splitlines() if re.search(".+" + stamp, line)]  # no line split
    assert "counter ran 8" in log
    with sqlite3.connect(small_disk / "data" / "autohome-test.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE module = 'counter'").fetchone()[0] == 8
        assert db.execute("SELECT value FROM store WHERE key = 'count'").fetchone()[0] == "8"


def damage(database: Path) -> None:
    """Overwrite the file's table of tables as a failing disk or a stray write would: every
    table's pages point nowhere."""
    with sqlite3.connect(database, timeout=WAIT_S) as conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET rootpage = 9999 WHERE name IN ('modules', 'runs', 'store')")
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute(f"PRAGMA schema_version = {version + 1}")  # running connections read it again


def test_a_database_damaged_under_autohome_is_moved_aside_and_modules_run_on(
        tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "counter", """
        INTERVAL = 30
        def run(log):
            log.info("counter ran")
    """)
    write_module(tmp_path / "modules", "daily", """
        INTERVAL = "1d"
        def run(log):
            log.info("daily ran")
    """)
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    daemon.wait_for_all("counter ran", "daily ran")
    damage(tmp_path / "data" / "autohome-test.db")
    for _ in range(3):  # before: every tick failed from here on
        daemon.send("\n")
        daemon.wait_for("counter ran")
    daemon.wait_for_all(r"the state database .* was damaged .*: moved aside as autohome-test.db.damaged, "
                        r"and a fresh one started")
    client = ConsoleClient(daemon.console_port)
    assert "AutoHome found its state database da" in client.command("notifications")
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    lines = "\n".join(daemon.lines)
    assert "the tick at" not in lines and lines.count("daily ran") == 1  # its day is remembered
    assert (tmp_path / "data" / "autohome-test.db.damaged").exists()
    with sqlite3.connect(tmp_path / "data" / "autohome-test.db") as db:
        positions = dict(db.execute("SELECT name, last_due_at FROM modules").fetchall())
        assert set(positions) == {"counter", "daily"} and all(positions.values())
        assert db.execute("SELECT COUNT(*) FROM runs WHERE module = 'counter'").fetchone()[0] >= 3


def test_a_disk_that_fills_mid_batch_leaves_no_line_split(small_disk: Path) -> None:
    from autohome.logs.setup import setup_logging
    from autohome.logs.tree import get_logger

    setup = setup_logging(small_disk / "logs")
    logger = get_logger("autohome.test")
    try:
        logger.info("before the disk filled")
        assert setup.writer.flush()
        filler = fill(small_disk)
        with filler.open("r+b") as file:  # a page or two of room: part of the next batch fits
            file.truncate(filler.stat().st_size - 6000)
        for number in range(300):
            logger.info("line %03d of a batch bigger than the room left on the disk", number)
        assert setup.writer.flush()
        filler.unlink()
        logger.info("after the disk had room again")
        assert setup.writer.flush()
    finally:
        setup.close()
    lines = (small_disk / "logs" / "current.log").read_text(encoding="utf-8").splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ +\["
    assert all(re.match(stamp, line) and not re.search(".+" + stamp, line) for line in lines), lines
    assert "300 log line(s) could not be written to current.log" in lines[-2]  # none half-written
    assert lines[-1].endswith("had room again") and len(lines) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_terminal_that_stops_reading_holds_up_neither_the_log_nor_a_shutdown(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "chatty", """
        INTERVAL = 1
        def run(log, store):
            count = store.get("count", 0) + 1
            store.set("count", count)
            for line in range(500):  # 100 kB a run: more than a pipe holds
                log.info("run %d line %d %s", count, line, "x" * 160)
            log.info("run %d done", count)
    """)
    env = clean_env(AUTOHOME_TICK_SECONDS="1")
    # Its terminal is a pipe that nobody reads (as Ctrl-S in its window does) once the console is up.
    process = subprocess.Popen([sys.executable, str(MAIN), "--port", "0", "--no-web"], cwd=tmp_path,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, text=True)
    try:
        assert process.stderr is not None
        port = next(int(found.group(1)) for line in process.stderr
                    if (found := re.search(r"console listening on [\d.]+:(\d+)", line)))
        client = ConsoleClient(port)  # and from here on, nobody reads the terminal
        client.sock.sendall(b"log 1 -f\r\n")
        seen = b""
        while b"run 4 done" not in seen:  # before: the log writer hung on the terminal at run 1
            chunk = client.sock.recv(65536)
            assert chunk, seen[-500:]
            seen += chunk
        client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT_S) == 0  # before: SIGTERM waited for the terminal for ever
    finally:
        process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    log = (tmp_path / "logs" / "current.log").read_text(encoding="utf-8")
    assert "run 4 done" in log and "AutoHome stopped" in log


def test_log_files_moved_or_removed_under_autohome_are_started_again(tmp_path: Path, daemon_factory) -> None:
    write_module(tmp_path / "modules", "counter", """
        INTERVAL = 30
        def run(log, store):
            count = store.get("count", 0) + 1
            store.set("count", count)
            log.info("counter ran %d", count)
    """)
    logs = tmp_path / "logs"
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    client = ConsoleClient(daemon.console_port)
    daemon.wait_for("counter ran 1")

    def tick_and_read(number: int) -> str:
        daemon.send("\n")
        daemon.wait_for(f"counter ran {number}")
        assert f"counter ran {number}" in client.command("log 3")  # the console reads the new file
        return (logs / "test.log").read_text(encoding="utf-8")

    (logs / "test.log").rename(logs / "rotated.log")  # a rotation by hand
    assert "was moved, removed or replaced while AutoHome wrote it" in tick_and_read(2).splitlines()[0]
    assert "counter ran 2" not in (logs / "rotated.log").read_text(encoding="utf-8")
    (logs / "test.log").unlink()
    assert "counter ran 3" in tick_and_read(3)
    shutil.rmtree(logs)
    assert "counter ran 4" in tick_and_read(4)  # the folder is made again
    (logs / "test.log").unlink()
    (logs / "test.log").mkdir()  # a folder in its place: reported once, retried
    daemon.send("\n")
    daemon.wait_for("counter ran 5")
    (logs / "test.log").rmdir()
    after = tick_and_read(6)
    assert re.search(r"log line\(s\) could not be written to test.log since .*Is a directory", after)
    client.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    assert sum("cannot write" in line for line in daemon.lines) == 1
