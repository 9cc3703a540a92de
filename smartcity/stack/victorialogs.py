"""VictoriaLogs (Apache-2.0), the local log store, built from its Go module like FerretDB.

It takes the platform's log lines through its Elasticsearch bulk API (``/insert/elasticsearch/_bulk``, what
:mod:`smartcity.runtime.logship` posts) and answers LogsQL at ``/select/logsql/query`` (``smartcity logs``,
Grafana). Its data lives in ``<stack_dir>/victorialogs/data``, kept 7 days; the binary is cached in
``<cache_dir>/bin/``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from smartcity.runtime.logquery import INSERT_PATH
from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService, run_script

VICTORIALOGS_VERSION = "v1.52.2"


def binary_path(cache_dir: Path) -> Path:
    return cache_dir / "bin" / f"victoria-logs-{VICTORIALOGS_VERSION}"


def install_victorialogs(cache_dir: Path) -> Path:
    """The cached binary, built by ``infra/local/install-victorialogs.sh`` the first time."""
    binary = binary_path(cache_dir)
    run_script("victorialogs", "install-victorialogs.sh", VICTORIALOGS_VERSION, binary.parent)
    return binary


def victorialogs_command(binary: Path, port: int, data_dir: Path) -> list[str]:
    """The command line of a VictoriaLogs on ``127.0.0.1:port`` keeping its data in ``data_dir``."""
    return [str(binary), f"-httpListenAddr={HOST}:{port}", f"-storageDataPath={data_dir}", "-retentionPeriod=7d",
            "-loggerLevel=WARN"]


class VictoriaLogsService(LocalService):
    name = "victorialogs"
    port_settings = ("victorialogs_port",)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def logs_url(self) -> str:
        """What ``SMARTCITY_LOGS_URL`` is set to for this server."""
        return self.url + INSERT_PATH

    def install(self) -> None:
        install_victorialogs(self.settings.cache_dir)

    def command(self) -> list[str]:
        return victorialogs_command(binary_path(self.settings.cache_dir), self.port, self.data_dir)

    def probe(self) -> bool:
        return httpx.get(f"{self.url}/health", timeout=PROBE_TIMEOUT_S).status_code == 200

    def version(self) -> str:
        # A build from the module carries no version stamp (vm_app_version is empty): the pinned one is what runs.
        return self._installed_version()

    def _installed_version(self) -> str:
        return VICTORIALOGS_VERSION.removeprefix("v") if binary_path(self.settings.cache_dir).exists() else ""
