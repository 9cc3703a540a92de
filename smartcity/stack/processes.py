"""The processes of the local servers, read from ``/proc``: a server's whole tree (its process group and every
descendant, even those that left the group), whether a group leader lives, signalling a tree and waiting for it to
end, and reaping the servers this process started (:class:`smartcity.stack.base.LocalService` uses them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path


def process_table() -> dict[int, tuple[str, int, int]]:
    """Every process as pid -> (state letter, parent pid, process group), read from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        table[int(stat.parent.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def process_tree(leader: int) -> list[int]:
    """Live (not zombie) processes of the group ``leader`` leads and all their descendants.

    Descendants count too because some servers move their children to sessions of their own (PostgreSQL's
    backends call setsid), out of reach of a signal to the group.
    """
    table = {pid: entry for pid, entry in process_table().items() if entry[0] not in ("Z", "X")}
    found = {pid for pid, (_, _, group) in table.items() if group == leader}
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (_, parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return sorted(found)


def group_leader_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process leading its own process group (as the servers we start do)."""
    reap(pid)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X") and int(fields[2]) == pid


# The servers this process started, kept so that their exit status is collected (no zombie, no warning).
children: dict[int, subprocess.Popen] = {}


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our child, so it does not linger as a zombie."""
    if pid in children:
        if children[pid].poll() is not None:
            del children[pid]
        return
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def alive_processes(pids: list[int]) -> list[int]:
    """Those of ``pids`` that are still running (zombies do not count; ours are reaped)."""
    for pid in pids:
        reap(pid)
    table = process_table()
    return [pid for pid in pids if pid in table and table[pid][0] not in ("Z", "X")]


def signal_processes(pids: list[int], sig: signal.Signals, group: int) -> None:
    """Signal the process group, and each process of ``pids`` that may have left it, with ``sig``."""
    with suppress(ProcessLookupError):
        os.killpg(group, sig)
    if sig == signal.SIGKILL:  # a graceful stop is the server's to pass on to its children
        for pid in alive_processes(pids):
            with suppress(ProcessLookupError):
                os.kill(pid, sig)


def wait_gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive_processes(pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
