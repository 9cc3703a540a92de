"""The data sources the dashboards and alert rules query (and the log store, for Explore), and where Grafana
finds them.

Grafana's provisioning files take no platform settings; they read environment variables (Grafana expands
``$NAME`` in provisioning values). :func:`grafana_environment` derives those variables from the platform's
settings, ``SMARTCITY_PROMETHEUS_URL`` and ``SMARTCITY_DATABASE_URL``, so a Grafana started with them queries
the same Prometheus and PostgreSQL as the platform; ``smartcity grafana env`` prints them. The centralized logs
are a VictoriaLogs datasource (the ``victoriametrics-logs-datasource`` plugin, which Grafana installs with
``GF_INSTALL_PLUGINS``) at the server ``SMARTCITY_LOGS_URL`` ships to (docs/observability.md).
"""

from __future__ import annotations

from typing import Any

from grafana import GRAFANA_DIR
from grafana.interpolate import SCRAPE_INTERVAL, format_duration
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

PROMETHEUS = {"type": "prometheus", "uid": "smartcity-prometheus"}
POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "smartcity-postgres"}
LOGS = {"type": "victoriametrics-logs-datasource", "uid": "smartcity-logs"}
EXPRESSIONS_UID = "__expr__"  # Grafana's server-side expressions (alert thresholds), not a provisioned source

# The environment variables the provisioning files read.
PROMETHEUS_URL = "GRAFANA_PROMETHEUS_URL"
LOGS_URL = "GRAFANA_LOGS_URL"
POSTGRES_HOST = "GRAFANA_POSTGRES_HOST"
POSTGRES_DATABASE = "GRAFANA_POSTGRES_DATABASE"
POSTGRES_USER = "GRAFANA_POSTGRES_USER"
POSTGRES_PASSWORD = "GRAFANA_POSTGRES_PASSWORD"
DASHBOARDS_DIR = "GRAFANA_DASHBOARDS_DIR"
PROVISIONING_PATH = "GF_PATHS_PROVISIONING"  # Grafana's own: the folder holding datasources/, dashboards/, alerting/


def provisioning() -> dict[str, Any]:
    """``provisioning/datasources/datasources.yml``: Prometheus, PostgreSQL and the logs, with fixed uids."""
    return {
        "apiVersion": 1,
        "deleteDatasources": [],
        "datasources": [
            {"name": "Prometheus", "uid": PROMETHEUS["uid"], "type": PROMETHEUS["type"], "access": "proxy",
             "url": f"${PROMETHEUS_URL}", "isDefault": True, "editable": False,
             "jsonData": {"httpMethod": "POST", "timeInterval": format_duration(SCRAPE_INTERVAL)}},
            {"name": "PostgreSQL", "uid": POSTGRES["uid"], "type": POSTGRES["type"], "access": "proxy",
             "url": f"${POSTGRES_HOST}", "user": f"${POSTGRES_USER}", "editable": False,
             "jsonData": {"database": f"${POSTGRES_DATABASE}", "sslmode": "disable", "postgresVersion": 1500,
                          "timescaledb": False, "maxOpenConns": 10},
             "secureJsonData": {"password": f"${POSTGRES_PASSWORD}"}},
            {"name": "Logs", "uid": LOGS["uid"], "type": LOGS["type"], "access": "proxy", "url": f"${LOGS_URL}",
             "editable": False, "jsonData": {"maxLines": "1000"}},
        ],
    }


def grafana_environment(settings: Settings) -> dict[str, str]:
    """The variables the provisioning files read, from the platform's settings (an error names a bad setting)."""
    from psycopg.conninfo import conninfo_to_dict

    from smartcity.backends.database.postgres import conninfo_from_url

    if not settings.prometheus_url:
        raise ConfigurationError("SMARTCITY_PROMETHEUS_URL", "is not set; Grafana's dashboards query Prometheus")
    if not settings.database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError("SMARTCITY_DATABASE_URL", f"{settings.database_url!r} is not PostgreSQL; Grafana's "
                                 "dashboards query the PostgreSQL store (postgresql://user@host:port/db)")
    parts = conninfo_to_dict(conninfo_from_url(settings.database_url, "SMARTCITY_DATABASE_URL", settings))
    return {
        PROVISIONING_PATH: str(GRAFANA_DIR / "provisioning"),
        DASHBOARDS_DIR: str(GRAFANA_DIR / "dashboards"),
        PROMETHEUS_URL: settings.prometheus_url,
        LOGS_URL: _logs_server(settings.logs_url),
        POSTGRES_HOST: f"{parts.get('host', '127.0.0.1')}:{parts.get('port', 5432)}",
        POSTGRES_DATABASE: str(parts.get("dbname", "")),
        POSTGRES_USER: str(parts.get("user", "")),
        POSTGRES_PASSWORD: str(parts.get("password", "")),
    }


def _logs_server(logs_url: str) -> str:
    """The VictoriaLogs server the logs are shipped to; empty when they are not, or go to an Elasticsearch (add an
    ``elasticsearch`` datasource for it)."""
    from smartcity.runtime.logquery import query_base

    try:
        return query_base(logs_url) if logs_url else ""
    except ValueError:
        return ""
