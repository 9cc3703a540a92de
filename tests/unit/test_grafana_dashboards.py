"""The Grafana dashboards and alert rules: committed files up to date, data sources provisioned, metrics real.

Grafana itself does not run here (it is AGPL-licensed, and no binary can be fetched); these tests check what
Grafana would read, and ``tests/integration/test_grafana_queries.py`` runs every query on the real servers.
"""

from __future__ import annotations

import json
from datetime import timedelta

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry
from typer.testing import CliRunner

from grafana import build
from grafana.datasources import EXPRESSIONS_UID, grafana_environment
from grafana.interpolate import SCRAPE_INTERVAL, QueryContext, parse_duration
from smartcity.city.files import configured_city, save_city
from smartcity.cli import app
from smartcity.errors import ConfigurationError
from smartcity.runtime.metrics import Metrics
from smartcity.settings import PROJECT_ROOT, Settings, get_settings
from smartcity.storage.replication import ReplicationLag

DASHBOARD_FILES = [f"dashboards/{name}.json" for name in build.DASHBOARDS]
# Series Prometheus itself adds for every target it scrapes.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("", "_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",), "unknown": ("",)}
CONTEXTS = {
    "all": QueryContext.last(timedelta(hours=6), variables={"function": ".*", "job": ".*", "zone": []}),
    "chosen": QueryContext.last(timedelta(hours=6), variables={
        "function": ["api-traffic", "store-timeseries"], "job": ["traffic"], "zone": ["Z00", "Z01"]}),
}


def _sample_names(registry: CollectorRegistry) -> set[str]:
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


@pytest.fixture(scope="module")
def exported_metrics() -> set[str]:
    """Every series name the platform's processes export: the gateway's and trigger's registry (OpenFaaS names,
    and the functions' own metrics), and the default registry the streaming jobs register theirs in and serve."""
    import models.serving  # noqa: F401 - registers the forecasting function's metrics in FUNCTION_METRICS
    import streaming.metrics  # noqa: F401 - registers the streaming jobs' metrics in the default registry

    replication = {family.name for family in ReplicationLag(None, None).describe()}  # where the API reads a replica
    return _sample_names(Metrics().registry) | _sample_names(REGISTRY) | SCRAPE_SERIES | replication


def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _provisioned_uids() -> set[str]:
    document = yaml.safe_load((build.GRAFANA_DIR / "provisioning/datasources/datasources.yml").read_text())
    return {source["uid"] for source in document["datasources"]}


def test_committed_files_are_a_fresh_render():
    assert build.stale() == {}, "run `smartcity grafana build` and commit grafana/"


def test_build_writes_every_file_then_nothing(tmp_path):
    written = build.build(tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in written) == sorted(build.render())
    assert build.build(tmp_path) == []
    (tmp_path / "dashboards/traffic.json").write_text("{}")
    assert build.stale(tmp_path).keys() == {"dashboards/traffic.json"}


def test_dashboards_show_the_configured_citys_local_time(tmp_path, monkeypatch):
    committed = {name: json.loads((PROJECT_ROOT / "grafana" / name).read_text()) for name in DASHBOARD_FILES}
    assert {document["timezone"] for document in committed.values()} == {configured_city().timezone}  # the default
    other = save_city(configured_city().model_copy(update={"name": "Elsewhere", "timezone": "America/Sao_Paulo"}),
                      tmp_path / "city.json")
    monkeypatch.setenv("SMARTCITY_CITY_FILE", str(other))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["grafana", "build", "--check"])  # the build takes the city from the settings
        written = build.build(tmp_path / "grafana")
    finally:
        monkeypatch.delenv("SMARTCITY_CITY_FILE")
        get_settings.cache_clear()
    assert result.exit_code == 1 and {f"grafana/{name}" for name in DASHBOARD_FILES} <= set(result.output.split())
    assert {json.loads((tmp_path / "grafana" / name).read_text())["timezone"] for name in DASHBOARD_FILES} == {
        "America/Sao_Paulo"}
    assert len(written) == len(build.render())


def test_cli_build_check_reports_up_to_date():
    result = CliRunner().invoke(app, ["grafana", "build", "--check"])
    assert result.exit_code == 0, result.output
    assert f"{len(build.render())} files up to date" in result.output


def test_every_panel_variable_and_alert_names_a_provisioned_datasource():
    uids = _provisioned_uids()
    assert uids == {"smartcity-prometheus", "smartcity-postgres", "smartcity-logs"}
    for name, make in build.DASHBOARDS.items():
        board = make()
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] in uids, f"{name}: variable {var['name']}"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids, f"{name}: {panel['title']}"
            assert {target["datasource"]["uid"] for target in panel["targets"]} == {panel["datasource"]["uid"]}
    for group in yaml.safe_load(build.render()["provisioning/alerting/rules.yml"])["groups"]:
        for rule in group["rules"]:
            assert {step["datasourceUid"] for step in rule["data"]} <= uids | {EXPRESSIONS_UID}, rule["uid"]
            assert rule["condition"] in {step["refId"] for step in rule["data"]}, rule["uid"]


@pytest.mark.parametrize("context", CONTEXTS, ids=str)
def test_every_promql_query_parses_and_names_exported_metrics(exported_metrics, context):
    checked = 0
    for query in build.queries():
        if query.language == "promql":
            expr = query.expanded(CONTEXTS[context])
            unknown = _metric_names(expr) - exported_metrics
            assert not unknown, f"{query.where}: {sorted(unknown)} is exported by no platform process"
            checked += 1
    assert checked


def test_variable_label_values_name_exported_metrics(exported_metrics):
    variables = [query for query in build.queries() if query.language == "label_values"]
    assert variables
    for query in variables:
        metric = query.text.removeprefix("label_values(").split(",")[0]
        assert metric in exported_metrics, query.where


def test_rate_interval_assumes_the_stacks_scrape_interval():
    config = yaml.safe_load((PROJECT_ROOT / "infra/prometheus/prometheus.yml").read_text())
    assert parse_duration(config["global"]["scrape_interval"]) == SCRAPE_INTERVAL


def test_exported_metric_names_include_the_platforms_own(exported_metrics):
    # the check above is only as good as this set: it holds the gateway's and the streaming jobs' series
    assert {"gateway_function_invocation_total", "gateway_functions_seconds_bucket",
            "smartcity_streaming_processing_lag_seconds_bucket", "smartcity_streaming_late_events_total"} <= exported_metrics
    assert "gateway_function_invocation" not in exported_metrics  # a counter is exported with its _total suffix


def test_an_unknown_metric_is_caught(exported_metrics):
    assert _metric_names('sum(rate(gateway_function_invocations_total{code="500"}[5m]))') - exported_metrics


def test_panels_sit_on_the_grid_without_overlapping():
    for name, make in build.DASHBOARDS.items():
        panels = make()["panels"]
        assert len({panel["id"] for panel in panels}) == len(panels), name
        cells = set()
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"
            mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not cells & mine, f"{name}: {panel['title']} overlaps another panel"
            cells |= mine


def test_dashboards_have_stable_unique_uids():
    uids = [make()["uid"] for make in build.DASHBOARDS.values()]
    assert uids == ["smartcity-overview", "smartcity-traffic", "smartcity-mobility"]


def test_grafana_environment_from_the_stack_settings(tmp_path):
    settings = Settings(prometheus_url="http://127.0.0.1:9090", secrets_dir=tmp_path,
                        database_url="postgresql://smartcity@127.0.0.1:5433/city",
                        logs_url="http://127.0.0.1:9428/insert/elasticsearch")
    env = grafana_environment(settings)
    assert env["GRAFANA_PROMETHEUS_URL"] == "http://127.0.0.1:9090"
    assert env["GRAFANA_LOGS_URL"] == "http://127.0.0.1:9428"
    assert (env["GRAFANA_POSTGRES_HOST"], env["GRAFANA_POSTGRES_DATABASE"], env["GRAFANA_POSTGRES_USER"]) == (
        "127.0.0.1:5433", "city", "smartcity")
    assert env["GRAFANA_POSTGRES_PASSWORD"] == ""
    assert env["GF_PATHS_PROVISIONING"] == str(PROJECT_ROOT / "grafana" / "provisioning")
    provisioning = "\n".join(build.render().values())
    for name in env:
        if name.startswith("GRAFANA_"):
            assert f"${name}" in provisioning, f"{name} is read by no provisioning file"


def test_grafana_environment_takes_the_password_secret(tmp_path):
    (tmp_path / "postgres-password").write_text("s3cret\n")
    settings = Settings(prometheus_url="http://p:9090", secrets_dir=tmp_path, database_url="postgresql://u@db:5432/d")
    assert grafana_environment(settings)["GRAFANA_POSTGRES_PASSWORD"] == "s3cret"


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"prometheus_url": None}, "SMARTCITY_PROMETHEUS_URL"),
    ({"database_url": "sqlite:////tmp/city.db"}, "SMARTCITY_DATABASE_URL"),
])
def test_grafana_environment_names_a_setting_grafana_cannot_use(tmp_path, overrides, setting):
    values = {"prometheus_url": "http://p:9090", "database_url": "postgresql://u@db:5432/d", "secrets_dir": tmp_path}
    with pytest.raises(ConfigurationError) as error:
        grafana_environment(Settings(**{**values, **overrides}))
    assert error.value.setting == setting


def test_postgres_replication_lag_has_a_panel_and_an_alert():
    from grafana.alerts import PRIMARY_REPLAY_LAG, REPLICA_LAG

    lag_metrics = {REPLICA_LAG, PRIMARY_REPLAY_LAG}
    where = {query.where.split(" query ")[0] for query in build.queries()
             if query.language == "promql" and _metric_names(query.expanded(CONTEXTS["all"])) & lag_metrics}
    assert "overview: panel 'PostgreSQL replication lag'" in where
    assert "alert smartcity-replication-lag" in where
    rendered = yaml.safe_load((build.GRAFANA_DIR / "provisioning/alerting/rules.yml").read_text())
    [lag_rule] = [rule for group in rendered["groups"] for rule in group["rules"]
                  if rule["uid"] == "smartcity-replication-lag"]
    assert _metric_names(lag_rule["data"][0]["model"]["expr"]) == lag_metrics
