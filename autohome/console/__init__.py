"""The telnet console: the server and its limits (server), one connection (session), the
telnet protocol (telnet), line editing (editor), and the command table (commands, with
completion)."""
