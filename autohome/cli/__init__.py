"""The command line: the command table (arguments), the daemon's start (daemon), test
mode's virtual clock (testmode), the module tools (tools), the remote console commands
(remote, client), the background service (service), and the exit (leftovers)."""

from autohome.cli.daemon import entry, main

__all__ = ["entry", "main"]
