"""`logs/current.log` itself: the handler that writes it, archives it when it grows, and
loses no more than a full disk refuses."""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from autohome.logs.archive import CURRENT_LOG, archive_current_log, prune_archives


class ArchivingFileHandler(logging.FileHandler):
    """Writes current.log; past `max_bytes` it archives the file (as -n does) and starts a
    new one, keeping the newest `keep` archives. Only the log-writer thread calls it, so
    no line can fall between the old file and the new one. Flushing is left to the log
    writer, once per batch.

    Why not RotatingFileHandler: it numbers its archives (.1, .2, ...) by renaming each one
    at every rollover, and flushes and stats the file for every line; AutoHome's archives
    keep the name of their first timestamp, the same as `-n` gives them."""

    def __init__(self, log_dir: Path, max_bytes: int, keep: int, name: str = CURRENT_LOG,
                 say: Callable[[str], None] | None = None) -> None:
        super().__init__(log_dir / name, encoding="utf-8", errors="backslashreplace")
        self.log_dir = log_dir
        self.log_file = log_dir / name
        self.max_bytes = max_bytes
        self.keep = keep
        self._size = self._file_size()
        self._flushed_size = self._size  # the file's size after the last flush that worked
        self._batch: list[str] = []  # lines written since the last flush
        self._say = say or _say  # where to say what goes wrong with the file (the terminal)
        self._restarted = False  # the file was moved away: the new one starts by saying so
        self._abandoned: list[object] = []  # streams whose descriptor a module closed (see _failed)
        self._lost = 0  # lines that could not be written, since _lost_since
        self._lost_since: str | None = None
        self._reason = ""

    def _file_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line, then archive the file if it has grown too big. While the disk
        refuses (full, gone), lines are counted, not written; the first line that can be
        written again is preceded by one that says how many were lost, and since when."""
        line = self.format(record) + self.terminator
        # Nothing may escape: an exception here would reach the log-writer thread.
        try:
            self._write(record, line)
        except OSError as exc:
            self._failed(exc, 1)
            return
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report on stderr, go on
            self.handleError(record)
            return
        self._size += len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
        if self.max_bytes and self._size >= self.max_bytes:
            self._archive(record)

    def _write(self, record: logging.LogRecord, line: str) -> None:
        if self.stream is not None and not self._batch and not self._is_still_there():
            self._start_anew(record)
        if self.stream is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)  # `rm -rf logs`: the folder comes back
            self.stream = self._open()
            self._size = self._flushed_size = self._file_size()
        if self._restarted:
            self._restarted = False
            self.stream.write(self._notice(record, "%s was moved, removed or replaced while AutoHome wrote "
                                                   "it; this new one goes on from here", self.log_file.name))
        if self._lost:
            self.stream.write(self._lost_line(record) + self.terminator)
        self.stream.write(line)
        self._batch.append(line)

    def _is_still_there(self) -> bool:
        """Whether the file's path still names the file being written: at the first line of
        each batch (a stat and an fstat), so a log rotated by hand (`mv current.log old.log`),
        removed or replaced is noticed at once, not 10 MB later."""
        assert self.stream is not None
        try:
            on_disk, held = self.log_file.stat(), os.fstat(self.stream.fileno())
        except (OSError, ValueError):
            return False
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def _start_anew(self, record: logging.LogRecord) -> None:
        """The file was moved, removed or replaced under AutoHome: finish the old one, start
        a new one at the path, and say so in its first line."""
        try:
            self.stream.close()  # type: ignore[union-attr]
        except OSError:
            pass  # what its buffer held went with it
        self.stream = None
        self._restarted = True

    def flush(self) -> None:
        """Flush what the batch wrote; lines that cannot reach the disk are counted as lost.
        If the file's descriptor was closed under it (a module's os.closerange), the file is
        opened again and the batch written there."""
        if self.stream is None:
            return
        try:
            self.stream.flush()
        except OSError as exc:
            if exc.errno != errno.EBADF or not self._batch:
                self._failed(exc, 0)
                return
            batch = self._batch
            self._abandon()
            try:
                self.stream = self._open()
                self.stream.writelines(batch)
                self.stream.flush()
            except OSError as again:
                self._batch = batch
                self._failed(again, 0)
                return
        if self._batch and self._lost:
            self._lost, self._lost_since = 0, None  # the notice went out with this batch
        self._batch = []
        self._flushed_size = self._size

    def _abandon(self) -> None:
        """Let go of a stream whose descriptor is gone without closing it: that number may be
        another file's by now. It is kept, never collected (which would close the number)."""
        if self.stream is not None:
            self._abandoned.append(self.stream)
        self.stream, self._batch = None, []

    def close(self) -> None:
        """Close the file; a disk that refuses the last lines does not make shutdown fail."""
        try:
            super().close()
        except OSError as exc:
            self._failed(exc, 0)

    def _failed(self, exc: OSError, lines: int) -> None:
        if not self._lost:
            self._lost_since = self.formatter.formatTime(_now_record()) if self.formatter else "?"
            self._say(f"autohome: cannot write {self.log_file} ({exc.strerror or exc}); counting the lines "
                 "lost until it can\n")
        self._lost += lines + len(self._batch)
        self._batch = []
        self._reason = exc.strerror or str(exc)
        if exc.errno == errno.EBADF:
            self._abandon()
            return
        stream, self.stream = self.stream, None  # reopened for the next line
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass  # its buffer is what was lost
        self._cut_partial_line()

    def _cut_partial_line(self) -> None:
        """A full disk may have taken part of the batch: cut the file back to its last whole
        line, so that no line is left split (the lost ones are counted)."""
        try:
            if self.log_file.stat().st_size > self._flushed_size:
                os.truncate(self.log_file, self._flushed_size)
        except OSError:
            pass  # gone, or not ours to cut: the next open starts where it is

    def _lost_line(self, record: logging.LogRecord) -> str:
        return self._notice(record, "%d log line(s) could not be written to %s since %s (%s)",
                            self._lost, self.log_file.name, self._lost_since, self._reason).rstrip("\n")

    def _notice(self, record: logging.LogRecord, msg: str, *args: object) -> str:
        """A WARNING line of the log writer's own, at the time of `record`."""
        notice = logging.LogRecord("autohome.logs", logging.WARNING, __file__, 0, msg, args, None)
        notice.created, notice.msecs, notice.threadName = record.created, record.msecs, "log-writer"
        return self.format(notice) + self.terminator

    def _archive(self, record: logging.LogRecord) -> None:
        self.close()  # Windows cannot rename an open file
        try:
            archive_current_log(self.log_dir, self.log_file.name)
            prune_archives(self.log_dir, self.keep, self.log_file.name)
        except OSError:  # current.log goes on; archiving is tried again after max_bytes more
            self.handleError(record)
        try:
            self.stream = self._open()
        except OSError:  # the next line tries again
            self.handleError(record)
        self._size = self._flushed_size = 0


def _now_record() -> logging.LogRecord:
    return logging.LogRecord("autohome.logs", logging.WARNING, __file__, 0, "", (), None)


def _say(text: str) -> None:
    """Tell the terminal about the log itself (nothing else can be logged about it)."""
    stream = sys.__stderr__
    if stream is not None:
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # no terminal either
