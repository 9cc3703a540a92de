"""The local stack without its servers: names, settings, generated configuration, compose file, and the process
handling of :class:`LocalService` on a small HTTP server of our own (started, kept, stopped with its children)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from smartcity import stack
from smartcity.stack import users
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.stack.base import LocalService, StackError, port_open
from smartcity.stack.processes import alive_processes, process_tree
from smartcity.stack.kafka import KafkaService
from smartcity.stack.prometheus import PrometheusService
from tests.ports import free_port


def test_an_unknown_service_name_is_refused_with_the_known_names():
    with pytest.raises(StackError) as raised:
        stack.services(["redis", "mysql"])
    assert raised.value.service == "mysql"
    assert "kafka, postgres, redis, ferretdb, s3, prometheus" in str(raised.value)


def test_the_postgres_replica_is_optional_and_started_only_when_named(tmp_path):
    settings = Settings(stack_dir=tmp_path, postgres_replica_port=15433)
    assert "postgres-replica" not in [service.name for service in stack.services(None, settings)]
    (replica,) = stack.services(["postgres-replica"], settings)
    assert replica.address == "127.0.0.1:15433" and replica.data_dir == tmp_path / "postgres-replica" / "data"
    command = replica.command()
    assert command[command.index("-p") + 1] == "15433" and command[-1] == "--hot-standby=on"


def test_settings_env_follows_the_port_settings(tmp_path):
    settings = Settings(
        kafka_port=19092, postgres_port=15432, redis_port=16379, ferretdb_port=27018, s3_port=19000,
        prometheus_port=19090, victorialogs_port=19428, stack_dir=tmp_path,
    )  # fmt: skip
    assert stack.settings_env(settings) == {
        "SMARTCITY_BUS_URL": "kafka://127.0.0.1:19092",
        "SMARTCITY_DATABASE_URL": "postgresql://smartcity@127.0.0.1:15432/smartcity",
        "SMARTCITY_DOCUMENTS_URL": "mongodb://127.0.0.1:27018/smartcity",
        "SMARTCITY_CACHE_URL": "redis://127.0.0.1:16379/0",
        "SMARTCITY_OBJECTS_URL": "s3://127.0.0.1:19000/smartcity",
        "SMARTCITY_BACKUP_URL": "s3://127.0.0.1:19000/smartcity-backups",
        "SMARTCITY_SECRETS_DIR": str(tmp_path / "secrets"),
        "SMARTCITY_PROMETHEUS_URL": "http://127.0.0.1:19090",
        "SMARTCITY_LOGS_URL": "http://127.0.0.1:19428/insert/elasticsearch",
    }


def test_prometheus_configuration_scrapes_the_ports_of_the_settings(tmp_path):
    settings = Settings(stack_dir=tmp_path, prometheus_port=19090, gateway_port=18080, gateway_internal_port=18081,
                        streaming_metrics_port=19108, trigger_metrics_port=19102)
    config = yaml.safe_load(PrometheusService(settings).config())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {
        "prometheus": ["127.0.0.1:19090"],
        "functions": ["127.0.0.1:18081"],  # the gateway's internal port: its public one has no /metrics
        "streaming": ["127.0.0.1:19108"],
        "triggers": ["127.0.0.1:19102"],
    }
    one_port = yaml.safe_load(PrometheusService(settings.model_copy(update={"gateway_internal_port": 0})).config())
    assert one_port["scrape_configs"][1]["static_configs"][0]["targets"] == ["127.0.0.1:18080"]
    assert all("scheme" not in job for job in config["scrape_configs"])  # plain HTTP without the stack's TLS


def test_prometheus_scrapes_the_gateway_over_https_verifying_the_project_ca_when_the_stack_runs_tls(tmp_path):
    settings = Settings(stack_dir=tmp_path, stack_tls=True, gateway_internal_port=18081)
    jobs = {job["job_name"]: job for job in yaml.safe_load(PrometheusService(settings).config())["scrape_configs"]}
    assert jobs["functions"]["scheme"] == "https" and jobs["functions"]["static_configs"][0]["targets"] == [
        "127.0.0.1:18081"]
    assert jobs["functions"]["tls_config"] == {"ca_file": str(tmp_path / "tls" / "ca.pem")}
    assert "scheme" not in jobs["triggers"] and "scheme" not in jobs["streaming"]  # prometheus_client: plain HTTP


def test_kafka_runs_broker_and_controller_on_the_ports_of_the_settings(tmp_path):
    settings = Settings(stack_dir=tmp_path, kafka_port=19092, kafka_controller_port=19093, topic_partitions=5)
    properties = dict(
        line.split("=", 1) for line in KafkaService(settings).server_properties().splitlines()
    )
    assert properties["process.roles"] == "broker,controller"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["num.partitions"] == "5"
    assert properties["log.dirs"] == str(tmp_path / "kafka" / "data")


def test_compose_file_uses_the_ports_of_the_settings_defaults():
    compose = yaml.safe_load((PROJECT_ROOT / "infra" / "compose.yaml").read_text())
    published = {
        name: {int(port.rsplit(":", 2)[1]) for port in service.get("ports", [])}
        for name, service in compose["services"].items()
    }
    defaults = Settings()
    assert defaults.kafka_port in published["kafka"]
    assert defaults.postgres_port in published["postgres"]
    assert defaults.ferretdb_port in published["mongodb"]
    assert defaults.redis_port in published["redis"]
    assert defaults.s3_port in published["minio"]
    assert defaults.prometheus_port in published["prometheus"]


# Process handling, on a tiny HTTP server that also starts a child in a session of its own (as PostgreSQL does).
# Like PostgreSQL's, the child ends by itself when its parent is gone.
CHILD = "import os, time\nparent = os.getppid()\nwhile os.getppid() == parent: time.sleep(0.1)"
SERVER = f"""
import http.server, subprocess, sys
subprocess.Popen([sys.executable, "-c", {CHILD!r}], start_new_session=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


class TinyHttpService(LocalService):
    name = "tiny"
    port_settings = ("gateway_port",)  # any port setting will do
    startup_timeout_s = 15.0
    stop_timeout_s = 5.0

    def install(self) -> None:
        pass

    def command(self) -> list[str]:
        return [sys.executable, "-c", SERVER, str(self.port)]

    def probe(self) -> bool:
        return httpx.get(f"http://{self.address}/", timeout=1).status_code == 200

    def version(self) -> str:
        return "1"


@pytest.fixture
def tiny(tmp_path: Path):
    service = TinyHttpService(Settings(stack_dir=tmp_path, gateway_port=free_port()))
    yield service
    service.stop()


def test_start_is_idempotent_and_stop_leaves_no_process(tiny):
    assert tiny.start() is True
    processes = process_tree(tiny.pid())
    assert len(processes) == 2  # the server and the child it moved to a session of its own
    assert tiny.start() is False
    assert process_tree(tiny.pid()) == processes

    assert tiny.stop() is True
    assert alive_processes(processes) == []
    assert not port_open(tiny.port)
    assert not tiny.pid_file.exists()
    assert tiny.stop() is False


def test_a_killed_server_is_unhealthy_and_started_again(tiny):
    tiny.start()
    first = tiny.pid()
    os.kill(first, signal.SIGKILL)  # from outside, as a crash would be
    status = tiny.status()
    assert status.healthy is False and status.pid is None
    assert tiny.start() is True
    assert tiny.healthy() and tiny.pid() != first


def test_a_port_taken_by_another_process_is_named(tiny):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", tiny.port))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {tiny.port} is already taken .* SMARTCITY_GATEWAY_PORT"):
            tiny.start()


def test_a_server_that_exits_while_starting_shows_its_log(tmp_path):
    class Failing(TinyHttpService):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; print('bad configuration: x'); sys.exit(3)"]

    with pytest.raises(StackError, match="bad configuration: x"):
        Failing(Settings(stack_dir=tmp_path, gateway_port=free_port())).start()


def test_other_live_users_are_seen_and_ended_ones_forgotten(tmp_path):
    users.register(tmp_path)
    assert users.others(tmp_path) == []  # this process is not "another" user
    another_session = f"""
from pathlib import Path
import time
from smartcity.stack import users
users.register(Path({str(tmp_path)!r}))
time.sleep(30)
"""
    other = subprocess.Popen([sys.executable, "-c", another_session])
    try:
        assert _wait_for(lambda: users.others(tmp_path) == [other.pid])
    finally:
        other.kill()
        other.wait()
    assert users.others(tmp_path) == []
    assert not (tmp_path / "users" / str(other.pid)).exists()
    users.unregister(tmp_path)
    assert list((tmp_path / "users").iterdir()) == []


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_cli_names_an_unknown_service_and_prints_env_lines_for_eval():
    from typer.testing import CliRunner

    from smartcity.cli import app

    runner = CliRunner()
    refused = runner.invoke(app, ["stack", "up", "mysql"])
    assert refused.exit_code == 1
    assert "mysql: unknown service" in refused.output
    printed = runner.invoke(app, ["stack", "env"])
    assert printed.exit_code == 0
    assert printed.output.splitlines()[0] == f"export SMARTCITY_BUS_URL={stack.settings_env()['SMARTCITY_BUS_URL']}"
