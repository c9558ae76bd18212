"""The console under bad manners: passwords, strangers, HTTP, huge lines, fuzz and load."""

from __future__ import annotations

import logging
import os
import random
import socket
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from support.clock import T0, WAIT_S
from support.console import ConsoleClient, console_port
from support.modules import spec, write_module
from support.processes import clean_env, run_autohome

from autohome.app import Main
from autohome.console.telnet import AYT, DO, EOF, IAC, SB, SE, TIMING_MARK, WONT

MakeMain = Callable[..., Main]


@pytest.fixture
def make_main(console_factory: Callable[..., Main]) -> MakeMain:
    def make(modules: int = 3, **settings: object) -> Main:
        specs = [spec(f"mod{i:02d}", lambda log, notify: None) for i in range(modules)]
        # Wrong passwords cost 0.01 s, 0.02 s, ... here instead of 2 s, 4 s, ...
        return console_factory(*specs, limits={"penalty_base_s": 0.01}, **settings)

    return make


port_of = console_port


def test_password_prompt_then_commands(make_main: MakeMain, caplog: pytest.LogCaptureFixture) -> None:
    main = make_main(console_password="correct horse")
    client = ConsoleClient(port_of(main), greeting_ends=None)
    assert client.read_until(b"password: ").endswith(b"commands.\r\npassword: ")
    client.sock.sendall(b"help\r\n")  # commands do nothing before the password
    assert b"wrong password" in client.read_until(b"password: ")
    client.sock.sendall(b"correct horse\r\n")
    assert b"welcome" in client.read_until(ConsoleClient.PROMPT)
    assert "modules read NAME" in client.command("help")
    client.close()


def test_three_wrong_passwords_close_and_repeat_offenders_are_slowed(
    make_main: MakeMain, caplog: pytest.LogCaptureFixture
) -> None:
    main = make_main(console_password="s3cret")
    with caplog.at_level(logging.INFO):
        sock = socket.create_connection(("127.0.0.1", port_of(main)), timeout=WAIT_S)
        sock.sendall(b"guess1\r\nguess2\r\nguess3\r\nguess4\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        assert data.count(b"wrong password") == 3 and data.endswith(b"wrong password; closing\r\n")
        assert "wrong password from 127.0.0.1:" in caplog.text
        second = socket.create_connection(("127.0.0.1", port_of(main)), timeout=WAIT_S)
        second.sendall(b"guess5\r\n")
        while b"wrong password" not in second.recv(4096):
            pass
        second.close()
    assert "console: answering 127.0.0.1:" in caplog.text and "0.01s late after repeated wrong" in caplog.text
    assert "(4 failed in a row from this source)" in caplog.text


def test_a_remote_address_without_password_is_refused_but_modules_run(tmp_path: Path) -> None:
    write_module(tmp_path / "modules", "m", 'INTERVAL = 30\ndef run(log, notify):\n    log.info("m ran")\n')
    env = clean_env(AUTOHOME_CONSOLE_HOST="0.0.0.0")
    result = run_autohome(tmp_path, "-t", "--port", "0", stdin="\n", env=env)
    assert result.returncode == 0
    assert "console not started: AUTOHOME_CONSOLE_HOST=0.0.0.0 lets other machines connect" in result.stderr
    assert "Set AUTOHOME_CONSOLE_PASSWORD" in result.stderr
    assert result.stderr.count("m ran") == 2


def test_a_remote_address_with_a_password_is_served(make_main: MakeMain) -> None:
    main = make_main(console_host="0.0.0.0", console_password="pw")
    assert main.console is not None and main.console.address[0] == "0.0.0.0"


def test_an_http_request_is_closed_and_logged(make_main: MakeMain, caplog: pytest.LogCaptureFixture) -> None:
    main = make_main()
    client = ConsoleClient(port_of(main))
    with caplog.at_level(logging.WARNING):
        client.sock.sendall(b"POST /shutdown HTTP/1.1\r\nHost: evil.example\r\n\r\nshutdown\r\n")
        assert client.read_all().endswith(b"not a web server\r\n")
    assert "sent an HTTP request; closed" in caplog.text
    assert "shutdown requested" not in caplog.text


def test_an_overlong_line_is_refused_and_the_connection_survives(make_main: MakeMain) -> None:
    main = make_main(console_max_line=100)
    client = ConsoleClient(port_of(main))
    assert client.command("x" * 5000).strip() == "line too long (over 100 bytes), ignored"
    assert "modules" in client.command("help")


def test_the_client_limit_holds(make_main: MakeMain) -> None:
    main = make_main(console_max_clients=2)
    first, second = ConsoleClient(port_of(main)), ConsoleClient(port_of(main))
    third = socket.create_connection(("127.0.0.1", port_of(main)), timeout=WAIT_S)
    refused = b""
    while chunk := third.recv(4096):
        refused += chunk
    assert refused == b"too many console connections (2); try again later\r\n"
    first.close()
    assert main.console is not None and main.console.wait_for_clients(1, WAIT_S)
    fourth = ConsoleClient(port_of(main))
    assert "help" in fourth.command("help")
    for client in (second, fourth):
        client.close()
    third.close()


def test_an_idle_connection_is_closed(make_main: MakeMain) -> None:
    main = make_main(console_idle=timedelta(seconds=0.2))
    client = ConsoleClient(port_of(main))
    assert client.read_all().endswith(b"idle too long, closing\r\n")


def test_are_you_there_timing_mark_and_eof(make_main: MakeMain) -> None:
    main = make_main()
    client = ConsoleClient(port_of(main))
    client.sock.sendall(bytes((IAC, AYT)))
    assert b"yes, still here" in client.read_until(ConsoleClient.PROMPT)
    client.sock.sendall(bytes((IAC, DO, TIMING_MARK, IAC, DO, TIMING_MARK)) + b"help\r\n")
    answer = client.read_until(ConsoleClient.PROMPT)
    assert answer.startswith(bytes((IAC, WONT, TIMING_MARK)) * 2)
    client.sock.sendall(bytes((IAC, SB, 24, 0)) + b"xterm" * 50 + bytes((IAC, SE)) + b"status\r\n")
    assert b"threads" in client.read_until(ConsoleClient.PROMPT)
    client.sock.sendall(bytes((IAC, EOF)))
    assert client.read_all().endswith(b"bye\r\n")


def test_status_and_log_tail(make_main: MakeMain, tmp_path: Path) -> None:
    log_file = tmp_path / "current.log"
    entries = [f"2026-01-05 12:{n // 60:02d}:{n % 60:02d}.000 INFO    [x] y: line {n}\n" for n in range(100)]
    entries[98] += "Traceback (most recent call last):\n  File \"m.py\", line 1\nValueError: boom\n"
    log_file.write_text("".join(entries))
    main = make_main(max_threads=4)
    main.panel.log_file = log_file
    main.tick(T0)
    client = ConsoleClient(port_of(main))
    status = client.command("status")
    assert "version  0.1.0" in status and "of 4 running modules" in status
    assert "modules  3 (" in status and "every 30s" in status  # 3, by state
    tail = client.command("log 3").strip().splitlines()
    assert tail == "".join(entries[97:]).splitlines()  # three entries, the traceback whole
    assert len(client.command("log").strip().splitlines()) == 23  # 20 entries, one with 3 more lines
    assert client.command("log many").startswith("usage: log [N]")


def _garbage(rng: random.Random) -> bytes:
    pieces = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))),
        bytes((IAC, rng.choice((DO, 254, 251, 252)), rng.randrange(256))),
        bytes((IAC, SB)) + bytes(rng.randrange(256) for _ in range(rng.randrange(2000))),
        b"x" * rng.randrange(3000, 9000) + b"\r\n",
        rng.choice([b"help\r\n", b"modules\r\n", b"modules read mod01\n", b"\r\x00", b"\x04", b"\x03"]),
        "é模块\r\n".encode() + b"\xc3\x28\r\n",
    ]
    return b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))


def test_fuzzed_bytes_and_abrupt_disconnects_leave_the_console_working(make_main: MakeMain) -> None:
    main = make_main(console_max_line=1024)
    rng = random.Random(20261125)
    for _ in range(150):
        sock = socket.create_connection(("127.0.0.1", port_of(main)), timeout=WAIT_S)
        try:
            for _ in range(rng.randrange(1, 4)):
                sock.sendall(_garbage(rng))
            if rng.random() < 0.5:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass  # the server may have closed on us (HTTP-looking or EOF bytes): fine
        finally:
            sock.close()
    assert main.console is not None and main.console.wait_for_clients(0, WAIT_S)
    client = ConsoleClient(port_of(main))
    assert "modules read NAME" in client.command("help")
    assert sorted(main.tick(T0)) == ["mod00", "mod01", "mod02"]
    assert main.runner.wait_idle(timeout_s=WAIT_S)
    assert all(view.status.last_run and view.status.last_run.is_ok for view in main.panel.module_views())


def _open_fds() -> dict[str, str]:
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the listing's own descriptor
    return fds


def test_many_clients_get_complete_answers_and_nothing_leaks(make_main: MakeMain) -> None:
    main = make_main(modules=40, console_max_clients=8)
    before, baseline_fds = set(threading.enumerate()), _open_fds() if sys.platform == "linux" else {}
    admitted, refused, errors = [], [], []
    lock = threading.Lock()
    gate = threading.Barrier(12)

    def client_work() -> None:
        sock = socket.create_connection(("127.0.0.1", port_of(main)), timeout=WAIT_S)
        greeting = b""
        while b"autohome> " not in greeting and not (greeting.startswith(b"too many") and b"\n" in greeting):
            chunk = sock.recv(4096)  # a busy machine may hand the greeting over in pieces
            if not chunk:
                break
            greeting += chunk
        gate.wait(WAIT_S)  # everyone is let in or refused before anyone works
        if greeting.startswith(b"too many"):
            with lock:
                refused.append(greeting)
            sock.close()
            return
        client = ConsoleClient(0, greeting_ends=None, sock=sock,
                               received=greeting.partition(b"autohome> ")[2])
        try:
            for _ in range(30):
                rows = client.command("modules").strip().splitlines()
                if len(rows) != 41 or not rows[-1].startswith("mod39"):
                    raise AssertionError(rows[-3:])
            with lock:
                admitted.append(1)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            with lock:
                errors.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=client_work) for _ in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT_S * 2)
    assert not errors and len(admitted) == 8 and len(refused) == 4
    # The console accepts one client at a time: once a later client is served, the refusals
    # before it are finished too.
    probe = ConsoleClient(port_of(main))
    probe.command("help")
    probe.close()
    assert main.console is not None and main.console.wait_for_clients(0, WAIT_S)
    left = [thread for thread in threading.enumerate() if thread not in before]
    for thread in left:
        thread.join(WAIT_S)
    assert [thread for thread in threading.enumerate() if thread not in before] == []
    if sys.platform == "linux":
        opened = {fd: target for fd, target in _open_fds().items() if baseline_fds.get(fd) != target}
        assert opened == {}


def test_failed_password_counts_stay_bounded() -> None:
    from autohome.control.penalties import FREE_FAILURES, MAX_TRACKED_ADDRESSES, Penalties

    penalties = Penalties(base_s=1.0)
    for _ in range(FREE_FAILURES):
        penalties.failed("192.0.2.1")
    assert penalties.delay_s("192.0.2.1") == 0.0  # the first failures are answered at once
    penalties.failed("192.0.2.1")
    assert penalties.delay_s("192.0.2.1") == 1.0
    penalties.failed("192.0.2.1")
    assert penalties.delay_s("192.0.2.1") == 2.0
    for number in range(MAX_TRACKED_ADDRESSES + 10):
        penalties.failed(f"10.0.{number // 256}.{number % 256}")
    assert penalties.tracked() == MAX_TRACKED_ADDRESSES
    assert penalties.delay_s("192.0.2.1") == 0.0  # the oldest address was forgotten
