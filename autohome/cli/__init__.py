"""The command line: the one table of commands (table), what every command is handed
(command), the daemon's start (daemon), test mode's virtual clock (testmode), the module
tools (tools), the remote console commands (remote, client), the background service
(service), and an exit that does not wait for threads modules left (leftovers)."""

from autohome.cli.daemon import entry, main

__all__ = ["entry", "main"]
