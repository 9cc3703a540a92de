"""Waiting until a server started as a process answers: the one loop that benches, the fault harness and the
tests share.

The URL is the caller's (the health path and port are settings of the server, not of this module). A process that
has already exited fails at once, naming its exit code, instead of leaving the caller to wait out the timeout.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

import httpx

POLL_S = 0.2


class NotReady(RuntimeError):
    """The server did not answer in time, or its process exited (``returncode`` is then its exit code)."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


def is_success(status: int) -> bool:
    return 200 <= status < 300


def wait_until_ready(url: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None, *,
                     accept: Callable[[int], bool] = is_success, log: Path | None = None) -> None:
    """Return once GET ``url`` answers with a status ``accept`` takes (a 2xx by default).

    Raises :class:`NotReady` when ``process`` (the server's, if given) exits first, or after ``timeout_s``; the
    message ends with the last 3,000 characters of ``log`` when one is given.
    """
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise NotReady(f"the process serving {url} exited with code {process.returncode}{_tail(log)}",
                           process.returncode)
        try:
            status = httpx.get(url, timeout=min(2.0, max(timeout_s, 0.1))).status_code
            if accept(status):
                return
            last = f"last answer {status}"
        except httpx.HTTPError as error:
            last = f"last error {type(error).__name__}"
        if time.monotonic() >= deadline:
            raise NotReady(f"{url} was not ready within {timeout_s:g} s ({last}){_tail(log)}")
        time.sleep(POLL_S)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-3000:]
