"""Running modules: which are due (due), the thread cap, backlog and drainer (runner), one
run from start to record (executor), isolated runs in a child process (isolation, child,
childcalls, processtree), TIMEOUTs and delayed starts (deadlines), what a run prints
(capture), and the guards after a run (crashes, descriptors)."""
