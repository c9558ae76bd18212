"""What the tests share: a clock they step, module files and specs, daemons in-process and
in subprocesses, a console client, a Pushover-like HTTP server, log watchers."""
