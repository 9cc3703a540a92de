"""infra/compose.yaml, the whole platform for docker compose: valid against the compose-spec JSON schema (from
the compose-go module on the Go module proxy, cached), every SMARTCITY_* name in it a setting, every dependency
and mount resolved, and every platform component there."""

from __future__ import annotations

import pytest
import yaml

from grafana.datasources import LOGS, LOGS_URL
from smartcity.runtime.logquery import query_base
from smartcity.settings import Settings, get_settings
from smartcity.stack.compose_schema import COMPOSE_FILE, compose_schema, schema_errors, setting_names

PLATFORM = {"gateway", "triggers", "simulator", "streaming", "training", "backup"}
STORES = {"kafka", "postgres", "mongodb", "redis", "minio"}
OBSERVABILITY = {"prometheus", "grafana", "victorialogs"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    return compose_schema(get_settings())


def test_the_compose_file_is_valid_against_the_compose_spec(compose, schema):
    assert schema_errors(compose, schema) == []
    broken = {**compose, "services": {**compose["services"], "gateway": {**compose["services"]["gateway"],
                                                                         "depends_on": "kafka"}}}
    assert any(error.startswith("services/gateway/depends_on") for error in schema_errors(broken, schema))


def test_every_setting_name_in_the_compose_file_is_a_setting(compose):
    names = setting_names()
    fields = {f"SMARTCITY_{field.upper()}" for field in Settings.model_fields}
    assert names and names <= fields, sorted(names - fields)
    given = {name for service in compose["services"].values()
             for name in (service.get("environment") or {}) if name.startswith("SMARTCITY_")}
    assert {"SMARTCITY_BUS_URL", "SMARTCITY_DATABASE_URL", "SMARTCITY_BACKUP_URL", "SMARTCITY_LOGS_URL"} <= given


def test_grafana_reads_the_logs_where_the_platform_ships_them(compose):
    grafana = compose["services"]["grafana"]["environment"]
    shipped_to = compose["services"]["gateway"]["environment"]["SMARTCITY_LOGS_URL"]
    assert shipped_to.startswith("http://victorialogs:")
    assert grafana[LOGS_URL] == query_base(shipped_to)  # the server, without the ingestion path
    assert LOGS["type"] in grafana["GF_INSTALL_PLUGINS"].split(",")


def test_docker_stop_waits_for_the_gateway_to_drain_and_the_triggers_to_commit(compose):
    defaults = Settings.model_fields
    drain_s = defaults["gateway_drain_delay_s"].default + defaults["gateway_drain_timeout_s"].default
    for name, needed_s in (("gateway", drain_s), ("triggers", 30)):  # Triggers.stop waits 30 s for each
        assert float(compose["services"][name]["stop_grace_period"].removesuffix("s")) > needed_s, name


def test_the_whole_platform_is_there_and_every_dependency_resolves(compose):
    services = compose["services"]
    assert PLATFORM | STORES | OBSERVABILITY <= services.keys()
    for name, service in services.items():
        for needed, spec in (service.get("depends_on") or {}).items():
            assert needed in services, (name, needed)
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[needed], (name, needed)
            elif condition == "service_completed_successfully":
                assert services[needed].get("restart") in (None, "no"), (name, needed)  # a one-shot job
    for name in PLATFORM - {"simulator", "training", "backup"}:
        assert "healthcheck" in services[name], name
    for name in PLATFORM | {"kafka-topics", "migrate"}:
        assert services[name]["environment"]["SMARTCITY_BUS_URL"] == "kafka://kafka:19092", name


def test_state_is_on_volumes_and_mounted_files_exist(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), (name, source)
            else:
                assert source in declared, (name, source)
    for name in STORES | {"victorialogs", "prometheus", "grafana", "streaming"}:
        assert compose["services"][name].get("volumes"), name


def test_health_and_metrics_are_on_internal_ports_published_to_no_host(compose):
    """The gateway publishes its public port alone; its healthcheck and Prometheus use the internal port, which the
    platform's processes bind on the compose network (SMARTCITY_INTERNAL_HOST)."""
    gateway = compose["services"]["gateway"]
    public, internal = (Settings.model_fields[name].default for name in ("gateway_port", "gateway_internal_port"))
    assert gateway["ports"] == [f"127.0.0.1:{public}:{public}"]
    assert f"127.0.0.1:{internal}/healthz" in " ".join(gateway["healthcheck"]["test"])
    scrape = yaml.safe_load((COMPOSE_FILE.parent / "prometheus" / "prometheus.compose.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    assert targets["functions"] == [f"gateway:{internal}"]
    assert all(compose["services"][name]["environment"]["SMARTCITY_INTERNAL_HOST"] == "0.0.0.0"
               for name in ("gateway", "triggers", "streaming"))
