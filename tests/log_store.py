"""A VictoriaLogs of the test's own: built (cached) by the project's install script, on a free loopback port,
its data in a temporary folder; stopped and started again on the same port and data to play an outage."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from smartcity.runtime.logquery import INSERT_PATH, LogFilter, query_logs
from smartcity.settings import get_settings
from smartcity.stack.victorialogs import install_victorialogs, victorialogs_command
from tests.ports import free_port

START_TIMEOUT_S = 30.0


class OwnedVictoriaLogs:
    def __init__(self, data_dir: Path) -> None:
        self.binary = install_victorialogs(get_settings().cache_dir)
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs_url(self) -> str:
        return self.url + INSERT_PATH

    def start(self) -> None:
        self.process = subprocess.Popen(victorialogs_command(self.binary, self.port, self.data_dir),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, f"victoria-logs exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "victoria-logs did not answer /health"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self.process = None

    def wait_for(self, chosen: LogFilter, matching: Any = lambda line: True, timeout_s: float = 60.0) -> list[dict]:
        """The lines of ``chosen`` once one of them matches (polling: the store makes new lines searchable
        within about a second)."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = query_logs(self.url, chosen)
            if any(matching(line) for line in lines):
                return lines
            assert time.monotonic() < deadline, f"no log line of {chosen} within {timeout_s} s: {lines}"
            time.sleep(0.5)
