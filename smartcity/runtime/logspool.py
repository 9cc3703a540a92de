"""The on-disk queue of log lines waiting for the log store: a bounded spool that outlives the store's outages.

A process appends its JSON lines to ``active-<pid>.ndjson`` (:class:`SpoolHandler`); :meth:`Spool.seal` turns that
file into a batch ``batch-<time_ns>-<pid>.ndjson``, which stays until :meth:`Spool.done` deletes it (once the store
has it). Batches of a process that died (its pid gone) are adopted by the next process to look, by an atomic
rename, so two shippers never send the same batch. When the batches pass ``max_bytes`` the oldest are dropped,
and counted in :attr:`Spool.dropped_bytes`: a log store down for days must not fill the disk.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_of(path: Path) -> int:
    return int(path.stem.rsplit("-", 1)[1])


class Spool:
    """The spool folder of log lines, shared by the processes that log to it."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.pid = os.getpid()
        self.dropped_bytes = 0
        self._lock = threading.Lock()
        self._file = None
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def active(self) -> Path:
        return self.directory / f"active-{self.pid}.ndjson"

    def append(self, line: str) -> None:
        """One log line, written through to the file (a crash after this loses nothing)."""
        with self._lock:
            if self._file is None or os.getpid() != self.pid:  # a forked child spools on its own
                self.pid = os.getpid()
                self._file = self.active.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()

    def seal(self) -> None:
        """Turn what was appended so far into a batch (nothing when nothing was), and adopt dead processes'."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._seal_file(self.active)
        for orphan in self.directory.glob("active-*.ndjson"):
            if _pid_of(orphan) != self.pid and not _alive(_pid_of(orphan)):
                self._seal_file(orphan)
        self._bound()

    def _seal_file(self, path: Path) -> None:
        try:
            if path.stat().st_size:
                path.replace(self.directory / f"batch-{time.time_ns()}-{self.pid}.ndjson")
            else:
                path.unlink()
        except FileNotFoundError:
            pass  # another process sealed it first

    def batches(self) -> list[Path]:
        """This process's batches, oldest first, with those of dead processes adopted."""
        mine = []
        for batch in sorted(self.directory.glob("batch-*.ndjson")):
            pid = _pid_of(batch)
            if pid != self.pid and not _alive(pid):
                adopted = batch.with_name(f"{batch.stem.rsplit('-', 1)[0]}-{self.pid}.ndjson")
                try:
                    batch.replace(adopted)
                except FileNotFoundError:
                    continue  # adopted by another process
                batch, pid = adopted, self.pid
            if pid == self.pid:
                mine.append(batch)
        return mine

    def done(self, batch: Path) -> None:
        batch.unlink(missing_ok=True)

    def _bound(self) -> None:
        batches = sorted(self.directory.glob("batch-*.ndjson"))
        sizes = {batch: _size(batch) for batch in batches}
        total = sum(sizes.values())
        for batch in batches:
            if total <= self.max_bytes:
                return
            batch.unlink(missing_ok=True)
            total -= sizes[batch]
            self.dropped_bytes += sizes[batch]
            print(f"log spool {self.directory} over {self.max_bytes} bytes: dropped {batch.name} "
                  f"({sizes[batch]} bytes)", file=sys.stderr)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class SpoolHandler(logging.Handler):
    """A logging handler writing each record, formatted, as one line of the spool."""

    def __init__(self, spool: Spool, formatter: logging.Formatter) -> None:
        super().__init__()
        self.spool = spool
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.spool.append(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)
