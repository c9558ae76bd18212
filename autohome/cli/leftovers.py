"""Threads that modules leave behind, and an exit that does not wait for them.

Python waits at exit for every thread that is not a daemon, and for every thread of a
`ThreadPoolExecutor`; a module's `Thread(daemon=False)` that never ends, or an executor task
stuck in a request without a timeout, would keep a stopped AutoHome alive for ever (and a
service manager would see it as running). After shutdown AutoHome names those threads and
the modules whose code they run, and the process ends without waiting for them.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path


def blocking_threads() -> list[threading.Thread]:
    """The threads that Python would wait for at exit, the calling one and the main one aside."""
    waits_for = {thread for thread in threading.enumerate() if not thread.daemon}
    executors = sys.modules.get("concurrent.futures.thread")
    if executors is not None:  # joined at exit whether daemons or not
        waits_for |= set(getattr(executors, "_threads_queues", {}))
    waits_for -= {threading.main_thread(), threading.current_thread()}
    return sorted((thread for thread in waits_for if thread.is_alive()), key=lambda thread: thread.name)


def module_of(thread: threading.Thread, modules_dir: Path) -> str | None:
    """The module whose code the thread runs now (the newest frame from a file in the folder)."""
    frame = sys._current_frames().get(thread.ident or -1)
    folder = str(modules_dir.resolve())
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(folder):
            return Path(filename).stem
        frame = frame.f_back
    return None


def describe(threads: list[threading.Thread], modules_dir: Path) -> str:
    """'worker (module fetcher), ThreadPoolExecutor-0_0 (module slow)'."""
    parts = []
    for thread in threads:
        module = module_of(thread, modules_dir)
        parts.append(f"{thread.name} ({'module ' + module if module else 'no module code on its stack'})")
    return ", ".join(parts)


def exit_now(code: int) -> None:
    """End the process at once with `code`, after flushing the standard streams: the threads
    that Python would wait for are left behind, with their files closed by the system."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # closed, or gone
    os._exit(code)
