"""Logging: AutoHome's own logger tree (tree), the set-up (setup), the writer thread and
its queue (writer, queue), current.log and its archives (file, archive), the terminal
(terminal), followers of the log (follow), and the guard against modules that reconfigure
logging (guard)."""
