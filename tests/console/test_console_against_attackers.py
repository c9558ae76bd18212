"""The console against an attacker on the same machine: web pages, lock-outs, guessing,
slow clients and endless sub-negotiations, over real sockets."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient, console_port
from support.logs import log_seen
from support.modules import spec
from support.processes import clean_env, run_autohome

from autohome.app import Main
from autohome.console.telnet import IAC, SB

MakeMain = Callable[..., Main]


@pytest.fixture
def make_main(console_factory: Callable[..., Main]) -> MakeMain:
    def make(**settings: object) -> Main:
        limits = settings.pop("limits", {"penalty_base_s": 0.01})
        return console_factory(spec("heartbeat", lambda log, notify: None), limits=limits, **settings)

    return make


def send_all_and_read(port: int, *chunks: bytes, source: str = "127.0.0.1") -> bytes:
    """Send the chunks one by one, then read until the console closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S, source_address=(source, 0))
    try:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break  # closed on us: that is the point
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data
    finally:
        sock.close()


def still_in_charge(main: Main) -> None:
    """Nothing a page sent was run: the module is not paused, the daemon not stopping."""
    assert not main.states.get("heartbeat").paused and not main.stop.is_requested
    client = ConsoleClient(console_port(main))
    assert "heartbeat" in client.command("modules")
    client.close()


BODY = b"\r\n\r\nmodules pause heartbeat\r\nshutdown\r\n"


@pytest.mark.parametrize("first", [
    b"POST /" + b"a" * 5000,  # longer than AUTOHOME_CONSOLE_MAX_LINE: no line check would see it
    b"GET /?" + b"x" * 100,
    b"OPTIONS * HTTP/1.1",
])
def test_a_web_page_request_is_closed_at_its_first_bytes(make_main: MakeMain, first: bytes) -> None:
    main = make_main(console_max_line=4096)
    with log_seen("sent an HTTP request") as seen:
        data = send_all_and_read(console_port(main), first + b" HTTP/1.1\r\nHost: x" + BODY)
        assert seen.wait()
    assert data.endswith(b"this is a telnet console, not a web server\r\n")
    still_in_charge(main)


def test_a_request_split_into_small_pieces_is_closed_too(make_main: MakeMain) -> None:
    main = make_main()
    data = send_all_and_read(console_port(main), b"PO", b"ST", b" /", b"x" * 6000, BODY)
    assert b"not a web server" in data
    still_in_charge(main)


def test_an_http_header_before_any_command_worked_closes_the_connection(make_main: MakeMain) -> None:
    main = make_main()
    data = send_all_and_read(console_port(main), b"xyzzy\r\nContent-Type: text/plain\r\n" + BODY)
    assert b"unknown command 'xyzzy'" in data and data.endswith(b"not a web server\r\n")
    still_in_charge(main)


def test_fuzzed_long_first_lines_mixed_with_http_never_run_a_command(make_main: MakeMain) -> None:
    main = make_main(console_max_clients=16)
    rng = random.Random(13)
    heads = [b"GET ", b"POST /", b"PUT /x ", b"HEAD / ", b"Host: a\r\n", b"Origin: b\r\n", b"",
             b"\xff\xfb\x01"]
    for _ in range(40):
        first = rng.choice(heads) + bytes(rng.choice(b"abc/ ?=&%") for _ in range(rng.randint(0, 9000)))
        pieces = [first[i:i + rng.randint(1, 3000)] for i in range(0, len(first), 3000)] or [b""]
        data = send_all_and_read(console_port(main), *pieces, b"\r\nHost: y" + BODY)
        assert b"shutting down AutoHome" not in data and b"heartbeat paused" not in data
    still_in_charge(main)


def test_every_loopback_address_counts_as_one_source_for_the_back_off(make_main: MakeMain) -> None:
    main = make_main(console_password="s3cret")
    with log_seen("4 failed in a row from this source") as fourth:
        for source in ("127.0.0.2", "127.0.0.3"):  # binding other loopback addresses gains nothing
            send_all_and_read(console_port(main), b"a\r\nb\r\nc\r\n", source=source)
        assert fourth.wait()


def test_wrong_passwords_slow_the_guesser_not_the_right_password(make_main: MakeMain) -> None:
    main = make_main(console_password="s3cret", limits={"penalty_base_s": 5.0})
    port = console_port(main)
    send_all_and_read(port, b"a\r\nb\r\nc\r\n")  # three free failures, then closed
    guesser = ConsoleClient(port, greeting_ends=b"password: ")
    with log_seen("late after repeated wrong passwords") as slowed:
        guesser.sock.sendall(b"d\r\n")  # the fourth failure is answered 5 s late...
        assert slowed.wait()
    user = ConsoleClient(port, greeting_ends=b"password: ")  # ...while the right password is not
    user.sock.sendall(b"s3cret\r\n")
    assert b"welcome" in user.read_until(ConsoleClient.PROMPT)
    guesser.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        guesser.sock.recv(4096)  # still waiting for its answer
    user.close()
    guesser.close()


def test_a_silent_connection_is_closed_at_the_login_deadline_but_a_user_stays(make_main: MakeMain) -> None:
    main = make_main(console_login=timedelta(seconds=0.25))
    port = console_port(main)
    silent = send_all_and_read(port)  # says nothing
    assert silent.endswith(b"too slow to log in, closing\r\n")  # after 0.25 s, not ten minutes
    user = ConsoleClient(port)
    assert "help" in user.command("help")
    with log_seen("did not log in") as closed:
        assert not closed.wait(0.4)  # a command worked: the login deadline no longer applies
    assert "heartbeat" in user.command("modules")
    user.close()


def test_a_trickle_of_bytes_without_a_line_is_idle(make_main: MakeMain) -> None:
    main = make_main(console_idle=timedelta(seconds=0.5))
    sock = socket.create_connection(("127.0.0.1", console_port(main)), timeout=WAIT_S)
    sock.sendall(b"help\r\n")
    closed = threading.Event()
    data = bytearray()

    def read() -> None:
        while chunk := sock.recv(4096):
            data.extend(chunk)
        closed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for _ in range(40):  # one byte every 0.1 s, never a whole line
        if closed.wait(0.1):
            break
        try:
            sock.sendall(b"x")
        except OSError:
            break
    assert closed.wait(WAIT_S) and bytes(data).endswith(b"idle too long, closing\r\n")
    sock.close()


def test_the_oldest_silent_connection_makes_room_for_a_newcomer(make_main: MakeMain) -> None:
    main = make_main(console_max_clients=2, limits={"evict_after_s": 0.0})
    port = console_port(main)
    squatters = [socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) for _ in range(2)]
    assert main.console is not None and main.console.wait_for_clients(2, WAIT_S)
    user = ConsoleClient(port)  # the console is full of silent connections: the oldest goes
    assert "heartbeat" in user.command("modules")
    user.close()
    for sock in squatters:
        sock.close()


def test_an_endless_sub_negotiation_closes_the_connection(make_main: MakeMain) -> None:
    main = make_main()
    with log_seen("sub-negotiation with no end") as seen:
        data = send_all_and_read(console_port(main), bytes((IAC, SB, 24)) + b"x" * 2000 + b"\r\nshutdown\r\n")
        assert seen.wait()
    assert data.endswith(b"telnet sub-negotiation too long; closing\r\n")
    still_in_charge(main)


def test_connections_that_only_follow_the_log_never_keep_a_command_out(
        tmp_path: Path, daemon_factory) -> None:
    (tmp_path / "modules").mkdir()
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    port = daemon.console_port
    followers = [ConsoleClient(port) for _ in range(8)]  # as many as the console takes
    for follower in followers:
        follower.sock.sendall(b"log 1 -f\r\n")
        follower.read_until(b"\n")
    result = run_autohome(tmp_path, "status", env=clean_env(AUTOHOME_CONSOLE_PORT=str(port)))
    assert result.returncode == 0 and "uptime" in result.stdout, result.stdout + result.stderr
    assert followers[0].read_all() is not None  # the oldest follower made room, and was closed
    for follower in followers:
        follower.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
    assert any("closing the oldest connection that only follows the log" in line for line in daemon.lines)
