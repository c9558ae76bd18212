"""`log -f`: the console follows the log live until Ctrl-C or Enter."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient, console_port
from support.logs import log_seen
from support.modules import spec

from autohome.app import Main
from autohome.console.telnet import IAC, IP
from autohome.logs.follow import MAX_WAITING, LogFollowers
from autohome.logs.setup import LineFormatter, LogSetup
from autohome.logs.tree import get_logger

FOLLOWING = b"following the log; Ctrl-C or Enter stops\r\n"


def quiet(log, notify):
    log.info("quiet ran")


@pytest.fixture
def client(console_factory: Callable[..., Main], logs: LogSetup) -> Iterator[ConsoleClient]:
    main = console_factory(spec("quiet", quiet, 3600), logs=logs)
    connection = ConsoleClient(console_port(main))
    yield connection
    connection.close()


@pytest.mark.parametrize("stop", [b"\x03", bytes((IAC, IP)), b"\r\n"], ids=["ctrl-c", "iac-ip", "enter"])
def test_log_f_sends_new_entries_until_ctrl_c_or_enter(client: ConsoleClient, logs: LogSetup,
                                                       stop: bytes) -> None:
    get_logger("autohome.test").info("before following")
    logs.flush()
    client.sock.sendall(b"log 1 -f\r\n")
    before = client.read_until(FOLLOWING)
    assert b"before following" in before  # the tail comes first
    logger = get_logger("autohome.test")
    logger.info("first <new> entry")
    try:
        raise ValueError("broken on purpose")
    except ValueError:
        logger.exception("an entry with a traceback")
    client.read_until(b"first <new> entry\r\n")
    entry = client.read_until(b"ValueError: broken on purpose\r\n")
    assert b"Traceback (most recent call last):" in entry  # the whole entry, as one
    client.sock.sendall(stop)
    client.read_until(b"stopped following the log\r\nautohome> ")
    logger.info("after following")
    assert "quiet" in client.command("modules")  # back at the prompt, and quiet
    assert "after following" not in client.command("help log")


def test_log_f_on_a_daemon_without_a_log_says_so(console_factory: Callable[..., Main]) -> None:
    client = ConsoleClient(console_port(console_factory()))
    assert client.command("log -f").strip() == ("following the log; Ctrl-C or Enter stops\r\n"
                                                "there is no log to follow")


def test_a_client_that_leaves_while_following_is_forgotten(client: ConsoleClient, logs: LogSetup) -> None:
    client.sock.sendall(b"log 0 -f\r\n")
    client.read_until(FOLLOWING)
    assert len(logs.followers) == 1
    with log_seen("disconnected") as seen:
        client.close()
        assert seen.wait()
    assert len(logs.followers) == 0


def test_a_follower_that_falls_behind_loses_the_oldest_and_is_told() -> None:
    followers = LogFollowers(LineFormatter())
    follower = followers.follow()
    for number in range(MAX_WAITING + 5):
        followers.emit(logging.LogRecord("autohome.x", logging.INFO, __file__, 1, "entry %d", (number,),
                                         None))
    entries, lost = follower.take()
    assert lost == 5 and len(entries) == MAX_WAITING
    assert entries[0].endswith("entry 5") and entries[-1].endswith(f"entry {MAX_WAITING + 4}")
    assert follower.take() == ([], 0)
    follower.close()
    followers.emit(logging.LogRecord("autohome.x", logging.INFO, __file__, 1, "unseen", (), None))
    assert follower.take() == ([], 0)


def test_an_entry_in_the_tail_is_not_sent_again_by_the_follower() -> None:
    followers = LogFollowers(LineFormatter())
    follower = followers.follow()

    def entry(text: str) -> logging.LogRecord:
        return logging.LogRecord("autohome.x", logging.INFO, __file__, 1, text, (), None)

    early = entry("written before the tail was read")
    follower.skip([LineFormatter().format(early)])  # the tail had it
    followers.emit(early)  # and it reaches the follower after the tail was read
    followers.emit(entry("new"))
    entries, _ = follower.take()
    assert [text.rsplit(": ", 1)[1] for text in entries] == ["new"]


def test_a_follower_that_does_not_read_holds_at_most_a_megabyte() -> None:
    from autohome.logs.follow import LogFollowers

    followers = LogFollowers(logging.Formatter("%(message)s"))
    follower = followers.follow()
    try:
        for number in range(40):  # 40 MB of entries while it reads nothing
            entry = f"{number:02d}" + "x" * 1_000_000
            followers.emit(logging.LogRecord("autohome.test", logging.INFO, "", 0, entry, None, None))
        entries, lost = follower.take()
    finally:
        follower.close()
    assert sum(len(entry) for entry in entries) <= 1_000_002 and lost >= 39
    assert entries[-1].startswith("39")  # the newest kept


def test_a_follower_is_woken_for_every_entry_however_the_writer_and_reader_interleave() -> None:
    """An entry pushed while the reader takes must wake the reader, not be left without a
    wake-up byte until the next (that never comes: `log -f` shows nothing more)."""
    import selectors
    import threading

    followers = LogFollowers(logging.Formatter("%(message)s"))
    follower = followers.follow()
    count = 20_000

    def write() -> None:
        for number in range(count):
            followers.emit(logging.LogRecord("autohome.test", logging.INFO, "", 0, str(number), None, None))

    writer = threading.Thread(target=write, daemon=True)
    received: list[str] = []
    lost = 0
    with selectors.DefaultSelector() as selector:
        selector.register(follower, selectors.EVENT_READ)
        writer.start()
        while len(received) + lost < count:
            assert selector.select(WAIT_S), f"not woken, {count - len(received) - lost} entries to come"
            entries, dropped = follower.take()
            received.extend(entries)
            lost += dropped
    writer.join(WAIT_S)
    follower.close()
    assert received[-1] == str(count - 1)
    assert [int(entry) for entry in received] == sorted(int(entry) for entry in received)
