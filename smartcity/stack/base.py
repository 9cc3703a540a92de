"""The small base every local service implements, and the process handling they share.

A :class:`LocalService` is one server run as this project's own process on 127.0.0.1: ``install()`` (idempotent,
cached, by a script in ``infra/local/``), ``start()`` (idempotent: a healthy service is left alone), ``healthy()``,
``version()`` and ``stop()`` (which leaves no process behind: the server and every process it started are ended
and waited for).
Its data, configuration, log and pid file live in ``<stack_dir>/<name>/``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.stack.processes import (
    alive_processes, children, group_leader_alive, process_tree, signal_processes, wait_gone,
)

HOST = "127.0.0.1"
INFRA_LOCAL = PROJECT_ROOT / "infra" / "local"
PROBE_TIMEOUT_S = 1.0


class StackError(Exception):
    """A local service could not be installed, started or stopped; names the service and says why."""

    def __init__(self, service: str, reason: str) -> None:
        self.service = service
        self.reason = reason
        super().__init__(f"{service}: {reason}")


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``smartcity stack status``."""

    service: str
    address: str
    healthy: bool
    version: str
    pid: int | None


def run_script(service: str, script: str, *args: str | Path) -> None:
    """Run ``infra/local/<script>``; a failure raises :class:`StackError` with the script's last output lines."""
    result = subprocess.run(
        ["bash", str(INFRA_LOCAL / script), *map(str, args)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StackError(service, f"{script} failed (exit {result.returncode}):\n{tail}")


def install_debian_packages(service: str, packages: tuple[str, ...] | list[str]) -> None:
    """Install the Debian packages that are missing, in one apt-get run (apt allows one at a time)."""
    if packages:
        run_script(service, "install-debian-packages.sh", *packages)


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT_S)
        return sock.connect_ex((HOST, port)) == 0


class LocalService(ABC):
    """One local server. Subclasses say how to install, configure, run, probe and version it."""

    name: ClassVar[str]
    # The settings naming the ports it listens on (checked free before it starts), the clients' port first.
    port_settings: ClassVar[tuple[str, ...]]
    debian_packages: ClassVar[tuple[str, ...]] = ()
    startup_timeout_s: ClassVar[float] = 60.0
    stop_timeout_s: ClassVar[float] = 20.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.stack_dir / self.name

    # What each service says about itself.

    @property
    def port(self) -> int:
        """The port clients use."""
        return getattr(self.settings, self.port_settings[0])

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def install(self) -> None:
        """Install the server's binaries if they are missing (idempotent, cached). Default: its Debian packages."""
        install_debian_packages(self.name, self.debian_packages)

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def probe(self) -> bool:
        """Whether the server answers its protocol on its port; False or any exception when it does not."""

    @abstractmethod
    def version(self) -> str:
        """The server's version, as it reports it (or as installed)."""

    def prepare(self) -> None:
        """Write configuration and initialise data before a start (idempotent). Default: nothing."""

    def refresh(self) -> None:
        """Bring a server that is already running up to date with the settings (idempotent). Default: nothing."""

    def after_start(self) -> None:
        """Create what the platform expects (database, topics, bucket) once healthy (idempotent). Default: nothing."""

    def run_as(self) -> str | None:
        """The OS user the server runs as; None for the current user."""
        return None

    # Process handling, shared by every service.

    @property
    def data_dir(self) -> Path:
        """Where the server keeps its data, kept between runs."""
        return self.dir / "data"

    @property
    def pid_file(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The pid of our running server process, or None when it is not running."""
        pid = self._recorded_pid()
        return pid if pid is not None and group_leader_alive(pid) else None

    def healthy(self) -> bool:
        """Our process runs and answers on its port."""
        if self.pid() is None:
            return False
        try:
            return self.probe()
        except Exception:  # noqa: BLE001 - a probe that fails in any way means "not healthy"
            return False

    def status(self) -> ServiceStatus:
        healthy = self.healthy()
        version = self._safe_version() if healthy else self._installed_version()
        return ServiceStatus(self.name, self.address, healthy, version, self.pid())

    def start(self) -> bool:
        """Start the server unless it is already healthy; wait until it is. Returns whether it was started."""
        if self.healthy():
            self.refresh()
            return False
        if self.pid() is not None:
            self.stop()  # our process is there but does not answer: start it afresh
        for setting in self.port_settings:
            if port_open(port := getattr(self.settings, setting)):
                raise StackError(
                    self.name,
                    f"port {port} is already taken by a process that is not ours; stop it or set "
                    f"SMARTCITY_{setting.upper()} to another port",
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._launch()
        self._wait_healthy()
        self.after_start()
        return True

    def stop(self) -> bool:
        """End the server and every process it started; wait until none is left. Returns whether one ran."""
        pid = self._recorded_pid()
        tree = process_tree(pid) if pid is not None else []
        if not tree:
            self.pid_file.unlink(missing_ok=True)
            return False
        signal_processes(tree, self.stop_signal, group=pid)
        if not wait_gone(tree, self.stop_timeout_s):
            signal_processes(tree, signal.SIGKILL, group=pid)
            if not wait_gone(tree, 10.0):
                raise StackError(self.name, f"processes {alive_processes(tree)} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return True

    def _launch(self) -> None:
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_suffix(".log.previous"))
        with self.log_file.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own command line
                self.command(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() ends every child too
                user=self.run_as(),
            )
        children[process.pid] = process
        self.pid_file.write_text(str(process.pid))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StackError(self.name, f"exited while starting; last lines of {self.log_file}:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise StackError(
            self.name, f"not healthy after {self.startup_timeout_s:.0f}s; last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _safe_version(self) -> str:
        try:
            return self.version()
        except Exception:  # noqa: BLE001 - a status table row must not fail because one query did
            return self._installed_version()

    def _installed_version(self) -> str:
        """The version known without asking the server (e.g. from the installed files); '' when unknown."""
        return ""
