"""The telnet console: the server and its limits (server), one connection (session), the
telnet protocol (telnet) and line editing (editor). The commands it runs are control's
(control/commands.py), shared with the status page."""
