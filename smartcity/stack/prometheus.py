"""Prometheus from Debian's packages, configured from the template ``infra/prometheus/prometheus.yml``.

It scrapes itself, the local function gateway's ``/metrics`` (on its internal port), the triggers' and the streaming
jobs' ``/metrics``, at the ports the settings name; its time series live in ``<stack_dir>/prometheus/data``.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

import httpx
import yaml

from smartcity.settings import PROJECT_ROOT
from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, LocalService
from smartcity.stack.tls import tls_files

CONFIG_TEMPLATE = PROJECT_ROOT / "infra" / "prometheus" / "prometheus.yml"
GATEWAY_JOB = "functions"


class PrometheusService(LocalService):
    name = "prometheus"
    port_settings = ("prometheus_port",)
    debian_packages = ("prometheus",)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def config_file(self) -> Path:
        return self.dir / "prometheus.yml"

    def config(self) -> str:
        """The template with the settings' ports filled in; a placeholder the settings do not fill is an error.
        With the stack's TLS on, the gateway answers HTTPS on its internal port too: its job is scraped over HTTPS,
        verifying the project CA."""
        text = Template(CONFIG_TEMPLATE.read_text()).substitute(
            prometheus_port=self.settings.prometheus_port,
            # the gateway's /metrics: on its internal port (smartcity.runtime.internal), else (0) its one port
            gateway_metrics_port=self.settings.gateway_internal_port or self.settings.gateway_port,
            streaming_metrics_port=self.settings.streaming_metrics_port,
            trigger_metrics_port=self.settings.trigger_metrics_port,
        )
        if not self.settings.stack_tls:
            return text
        config = yaml.safe_load(text)
        for job in config["scrape_configs"]:
            if job["job_name"] == GATEWAY_JOB:
                job["scheme"] = "https"
                job["tls_config"] = {"ca_file": str(tls_files(self.settings.stack_dir).ca_cert)}
        return yaml.safe_dump(config, sort_keys=False)

    def prepare(self) -> None:
        self.config_file.write_text(self.config())

    def refresh(self) -> None:
        """A running Prometheus whose scrape configuration is out of date reloads the new one."""
        if not self.config_file.is_file() or self.config_file.read_text() != self.config():
            self.prepare()
            httpx.post(f"{self.url}/-/reload", timeout=PROBE_TIMEOUT_S).raise_for_status()

    def command(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-lifecycle",
        ]

    def probe(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=PROBE_TIMEOUT_S).status_code == 200

    def version(self) -> str:
        response = httpx.get(f"{self.url}/api/v1/status/buildinfo", timeout=PROBE_TIMEOUT_S)
        return str(response.raise_for_status().json()["data"]["version"])
