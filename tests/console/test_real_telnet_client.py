"""End to end: the real Debian `telnet` client, in a pseudo-terminal, against the real daemon."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
from support.clock import WAIT_S
from support.modules import write_module
from support.processes import Terminal

if sys.platform == "win32":
    pytest.skip("pseudo-terminals are POSIX-only", allow_module_level=True)

TELNET = shutil.which("telnet")
if TELNET is None and not os.environ.get("CI"):
    pytest.skip("telnet is not installed (.ci/run installs it)", allow_module_level=True)


def _port_23_usable() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the console does
        try:
            probe.bind(("127.0.0.1", 23))
        except OSError:
            return False
    return True


# On port 23 the Debian client opens with a burst of option offers, which must all be refused.
@pytest.mark.parametrize("port", ["0", pytest.param("23", marks=pytest.mark.skipif(
    not _port_23_usable(), reason="port 23 needs root and must be free"))])
def test_real_telnet_client_sees_greeting_help_modules_and_quits(
    tmp_path: Path, daemon_factory, port: str
) -> None:
    assert TELNET is not None, "CI must install the telnet package"
    write_module(tmp_path / "modules", "plants", '''
        """Remind me to water the plants."""
        INTERVAL = "1d"
        def run(log, notify):
            log.info("water the plants")
    ''')
    daemon = daemon_factory(tmp_path, "-t", "--port", port)
    port = daemon.console_port
    daemon.wait_for("module plants finished")
    terminal = Terminal(TELNET, "127.0.0.1", str(port))
    try:
        terminal.expect(b"Type 'help' for commands.\r\nautohome> ")
        terminal.type("help")
        screen = terminal.expect(b"autohome> ", count=2)
        assert b"modules read NAME" in screen and b"shutdown" in screen
        terminal.type("modules")
        screen = terminal.expect(b"autohome> ", count=3)
        assert b"plants" in screen and b"idle" in screen and b"1d" in screen and b" ok" in screen
        assert b"\xff" not in screen  # no raw option bytes reached the screen
        terminal.type("quit")
        terminal.expect(b"bye")
        terminal.expect(b"Connection closed by foreign host")
        assert terminal.process.wait(WAIT_S) is not None
    finally:
        terminal.close()
    daemon.close_stdin()
    assert daemon.wait() == 0


def test_real_telnet_client_gets_history_and_tab_completion(tmp_path: Path, daemon_factory) -> None:
    assert TELNET is not None, "CI must install the telnet package"
    write_module(tmp_path / "modules", "plants", '''
        """Remind me to water the plants."""
        INTERVAL = "1d"
        def run(log, notify):
            log.info("water the plants")
    ''')
    daemon = daemon_factory(tmp_path, "-t", "--port", "0")
    terminal = Terminal(TELNET, "127.0.0.1", str(daemon.console_port))
    try:
        terminal.expect(b"Type 'help' for commands.\r\nautohome> ")
        terminal.press(b"help log\r")
        terminal.expect(b"then follow it until Ctrl-C or Enter")
        terminal.press(b"\x1b[A")  # up-arrow: the last command comes back, to be sent again
        terminal.expect(b"autohome> help log", count=2)
        terminal.press(b"\r")
        terminal.expect(b"then follow it until Ctrl-C or Enter", count=2)
        terminal.press(b"modules read pl\t")  # completes the module's name
        terminal.expect(b"modules read plants ")
        terminal.press(b"\r")
        terminal.expect(b"Remind me to water the plants.")
        terminal.press(b"modules re\t")  # read or reload: both are listed
        terminal.expect(b"read  reload")
        terminal.press(b"\x15quit\r")
        terminal.expect(b"Connection closed by foreign host")
    finally:
        terminal.close()
    daemon.close_stdin()
    assert daemon.wait() == 0
