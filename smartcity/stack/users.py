"""Who uses the local stack: every process that called ``up`` is recorded until it ends or calls ``down``.

Several test sessions may share one stack (one machine, one working tree). A session that ends must not stop the
servers another running session still uses, so a plain ``down`` leaves them running while any other user lives;
``smartcity stack down`` stops them all the same (``force``).
"""

from __future__ import annotations

import os
from pathlib import Path


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), which tells a live process from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _folder(stack_dir: Path) -> Path:
    return stack_dir / "users"


def register(stack_dir: Path) -> None:
    """Record this process as a user of the stack."""
    folder = _folder(stack_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).write_text(_start_time(os.getpid()) or "")


def unregister(stack_dir: Path) -> None:
    (_folder(stack_dir) / str(os.getpid())).unlink(missing_ok=True)


def others(stack_dir: Path) -> list[int]:
    """Pids of the other live users; records of ended processes are removed."""
    live = []
    for record in _folder(stack_dir).glob("[0-9]*"):
        pid = int(record.name)
        if pid == os.getpid():
            continue
        try:
            recorded = record.read_text()
        except FileNotFoundError:
            continue  # removed meanwhile by its process or another reader
        started = _start_time(pid)
        if started is not None and started == recorded:
            live.append(pid)
        else:
            record.unlink(missing_ok=True)
    return sorted(live)
