"""Grafana alert rules as code: the platform's objectives (design: API p95 < 500 ms, processing lag < 1 minute)
and the city's own alarms (a congested zone, a hotspot of anomalies and incidents), as Grafana's alerting
provisioning file.

Each rule is one query (A) and a threshold on it (B, a server-side expression); every series of A is an alert
instance of its own (a function, a streaming job, a zone), labelled as the series is.
"""

from __future__ import annotations

from typing import Any

from grafana.city import API_FUNCTIONS, STREAMING_JOB
from grafana.datasources import EXPRESSIONS_UID, POSTGRES, PROMETHEUS
from grafana.traffic import CONGESTED

FOLDER = "Smart city"
GROUP_INTERVAL = "1m"
LAG_LIMIT_S = 60
API_P95_LIMIT_S = 0.5
ERROR_RATIO_LIMIT = 0.05
REPLICATION_LAG_LIMIT_S = 30
REPLICA_LAG = "smartcity_postgres_replica_lag_seconds"  # the replica's own view (smartcity/storage/replication.py)
PRIMARY_REPLAY_LAG = "smartcity_postgres_replication_replay_lag_seconds"  # the primary's, by replica
HOTSPOT_SIZE_LIMIT = 5  # members from which a hotspot is an alarm (cluster-hotspots finds them from 3 on)


def _query(target: dict[str, Any], seconds_back: int) -> dict[str, Any]:
    datasource = target["datasource"]
    return {"refId": "A", "relativeTimeRange": {"from": seconds_back, "to": 0}, "datasourceUid": datasource["uid"],
            "model": {"refId": "A", "intervalMs": 1000, "maxDataPoints": 43200, **target}}


def _threshold(above: float) -> dict[str, Any]:
    return {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": EXPRESSIONS_UID,
            "model": {"refId": "B", "type": "threshold", "expression": "A",
                      "datasource": {"type": "__expr__", "uid": EXPRESSIONS_UID},
                      "conditions": [{"evaluator": {"type": "gt", "params": [above]}}]}}


def prometheus_query(expr: str) -> dict[str, Any]:
    return {"datasource": PROMETHEUS, "expr": expr, "instant": True, "range": False, "editorMode": "code"}


def postgres_query(raw: str) -> dict[str, Any]:
    return {"datasource": POSTGRES, "rawSql": raw, "format": "table", "rawQuery": True, "editorMode": "code"}


def rule(uid: str, title: str, query: dict[str, Any], above: float, *, pending: str, summary: str,
         severity: str = "warning", seconds_back: int = 600) -> dict[str, Any]:
    """Fires for each series of ``query`` above ``above`` for ``pending``; no data is not an alarm."""
    return {
        "uid": uid, "title": title, "condition": "B", "data": [_query(query, seconds_back), _threshold(above)],
        "noDataState": "OK", "execErrState": "Error", "for": pending, "isPaused": False,
        "annotations": {"summary": summary}, "labels": {"platform": "smartcity", "severity": severity},
    }


def platform_rules() -> list[dict[str, Any]]:
    lag_p95 = (f"histogram_quantile(0.95, sum by ({STREAMING_JOB}, le) "
               "(rate(smartcity_streaming_processing_lag_seconds_bucket[5m])))")
    api_p95 = (f"histogram_quantile(0.95, sum by (function_name, le) "
               f"(rate(gateway_functions_seconds_bucket{{{API_FUNCTIONS}}}[5m])))")
    error_ratio = ('sum by (function_name) (rate(gateway_function_invocation_total{code=~"5.."}[5m])) '
                   "/ sum by (function_name) (rate(gateway_function_invocation_total[5m]))")
    return [
        rule("smartcity-processing-lag", "Streaming processing lag p95 above 60 s", prometheus_query(lag_p95),
             LAG_LIMIT_S, pending="5m", severity="critical",
             summary=f"Job {{{{ $labels.{STREAMING_JOB} }}}}: 95 % of its events wait more than {LAG_LIMIT_S} s "
             "before their aggregate can be queried."),
        rule("smartcity-function-errors", "Function error ratio above 5 %", prometheus_query(error_ratio),
             ERROR_RATIO_LIMIT, pending="5m",
             summary="Function {{ $labels.function_name }}: more than 5 % of its invocations failed (5xx) "
             "over 5 minutes."),
        rule("smartcity-api-latency", "API latency p95 above 500 ms", prometheus_query(api_p95), API_P95_LIMIT_S,
             pending="5m", summary="API function {{ $labels.function_name }}: 95th percentile response time above "
             "500 ms over 5 minutes."),
        rule("smartcity-late-events-dropped", "Late events dropped by the watermark",
             prometheus_query('sum by (topic) (increase(smartcity_streaming_late_events_total{outcome="dropped"}[10m]))'),
             0, pending="0s", summary="Topic {{ $labels.topic }}: events arrived after the watermark closed their "
             "window and were left out of the aggregates (raise SMARTCITY_STREAMING_WATERMARK_S?)."),
        rule("smartcity-replication-lag", f"PostgreSQL replica lag above {REPLICATION_LAG_LIMIT_S} s",
             prometheus_query(f"max({REPLICA_LAG}) or max by (replica) ({PRIMARY_REPLAY_LAG})"),
             REPLICATION_LAG_LIMIT_S, pending="5m",
             summary=f"The API's read replica trails the primary by more than {REPLICATION_LAG_LIMIT_S} s: its "
             "answers are that old (docs/operations.md; set SMARTCITY_DATABASE_READ_URL to the primary meanwhile)."),
        rule("smartcity-target-down", "Metrics target down", prometheus_query("1 - up"), 0, pending="2m",
             severity="critical", summary="Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}."),
    ]


def city_rules() -> list[dict[str, Any]]:
    zone_congestion = (
        "SELECT zone_id AS zone, avg(congestion_index) AS congestion FROM traffic_segment_5min "
        "WHERE $__timeFilter(window_start) GROUP BY zone_id")
    return [
        rule("smartcity-zone-congested", f"Zone congestion index above {CONGESTED}", postgres_query(zone_congestion),
             CONGESTED, pending="10m", seconds_back=900,
             summary=f"Zone {{{{ $labels.zone }}}}: the mean congestion index of its road segments has stayed above "
             f"{CONGESTED} (0 free flow .. 1 jammed) over the last 15 minutes."),
        rule("smartcity-hotspot", f"Hotspot of {HOTSPOT_SIZE_LIMIT} or more anomalies and incidents",
             postgres_query("SELECT zone_id AS zone, max(size) AS size FROM traffic_hotspots WHERE active "
                            "GROUP BY zone_id"),
             HOTSPOT_SIZE_LIMIT - 1, pending="2m",
             summary=f"Zone {{{{ $labels.zone }}}}: anomalies and incidents cluster there, close in space and "
             f"time ({HOTSPOT_SIZE_LIMIT} or more); /v1/incidents/hotspots lists them."),
    ]


def provisioning() -> dict[str, Any]:
    """``provisioning/alerting/rules.yml``: the rule groups, in the dashboards' folder; each rule labelled with its
    group as ``area``, which the notification policies route on (grafana/access.py)."""
    groups = (("platform", platform_rules()), ("city", city_rules()))
    return {"apiVersion": 1,
            "groups": [{"orgId": 1, "name": name, "folder": FOLDER, "interval": GROUP_INTERVAL,
                        "rules": [{**one, "labels": {**one["labels"], "area": name}} for one in rules]}
                       for name, rules in groups]}
