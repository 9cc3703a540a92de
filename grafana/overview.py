"""Dashboard "Overview": the whole system at a glance — functions, streaming jobs, data arriving in storage.

Functions: the OpenFaaS gateway's metrics (``gateway_function_invocation_total{function_name, code}``,
``gateway_functions_seconds``), served by the local gateway and the Kafka trigger. Streaming: the Spark jobs'
``smartcity_streaming_*`` metrics. Storage: the stream tables and the streaming aggregates in PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from grafana.alerts import PRIMARY_REPLAY_LAG, REPLICA_LAG, REPLICATION_LAG_LIMIT_S
from grafana.city import API_FUNCTIONS, STREAMING_JOB, function_variable, job_variable, per_stream
from grafana.panels import dashboard, promql, sql, stat, table, timeseries

UID = "smartcity-overview"
FUNCTION = 'function_name=~"$function"'
JOB = f'{STREAMING_JOB}=~"$job"'
RATE = "[$__rate_interval]"

INVOCATIONS = f"sum(rate(gateway_function_invocation_total{RATE}))"
ERRORS = f'sum(rate(gateway_function_invocation_total{{code=~"5.."}}{RATE}))'


def _health() -> list[dict[str, Any]]:
    return [
        stat("Scrape targets up", promql("sum(up) / count(up)"), unit="percentunit",
             description="Share of Prometheus's targets (gateway, streaming exporter, itself) answering its scrapes.",
             thresholds=((None, "red"), (1, "green"))),
        stat("Invocations", promql(INVOCATIONS), unit="reqps",
             description="Function invocations per second, HTTP and Kafka-triggered together."),
        stat("Error ratio", promql(f"({ERRORS} or vector(0)) / {INVOCATIONS}"), unit="percentunit",
             description="Invocations that ended in a 5xx (a failed handler), out of all.",
             thresholds=((0.01, "yellow"), (0.05, "red"))),
        stat("API latency p95",
             promql(f"histogram_quantile(0.95, sum by (le) (rate(gateway_functions_seconds_bucket{{{API_FUNCTIONS}}}{RATE})))"),
             unit="s", description="95th percentile of the API functions' response time (target: under 500 ms).",
             thresholds=((0.3, "yellow"), (0.5, "red"))),
        stat("Processing lag p95",
             promql(f"histogram_quantile(0.95, sum by (le) (rate(smartcity_streaming_processing_lag_seconds_bucket{RATE})))"),
             unit="s", description="From an event's time until the aggregate counting it can be queried (target: "
             "under 1 minute).", thresholds=((30, "yellow"), (60, "red"))),
        stat("Dead-lettered records", promql("sum(increase(smartcity_streaming_dead_lettered_total[$__range]))"),
             unit="short", description="Unusable records the streaming jobs sent to the dead-letter topic, over the "
             "time range.", thresholds=((1, "yellow"),)),
    ]


def _functions() -> list[dict[str, Any]]:
    by_function = f"sum by (function_name) (rate(gateway_function_invocation_total{{{FUNCTION}}}{RATE}))"
    return [
        timeseries("Invocations by function", promql(by_function, "{{function_name}}"), unit="reqps"),
        timeseries("Invocations by status code",
                   promql(f"sum by (code) (rate(gateway_function_invocation_total{{{FUNCTION}}}{RATE}))", "{{code}}"),
                   unit="reqps", stacked=True,
                   description="200 handled, 400 invalid input (dead-lettered by a trigger), 5xx failed."),
        timeseries("Duration p95 by function",
                   promql(f"histogram_quantile(0.95, sum by (function_name, le) "
                          f"(rate(gateway_functions_seconds_bucket{{{FUNCTION}}}{RATE})))", "{{function_name}}"),
                   unit="s", thresholds=((0.5, "red"),)),
        timeseries("Error ratio by function",
                   promql(f'sum by (function_name) (rate(gateway_function_invocation_total{{{FUNCTION}, code=~"5.."}}'
                          f"{RATE})) / {by_function}", "{{function_name}}"),
                   unit="percentunit", minimum=0, thresholds=((0.05, "red"),)),
        timeseries("Replicas by function",
                   promql(f"sum by (function_name) (gateway_service_count{{{FUNCTION}}})", "{{function_name}}"),
                   unit="short", minimum=0, width=24, height=6),
    ]


def _streaming() -> list[dict[str, Any]]:
    lag_buckets = f"rate(smartcity_streaming_processing_lag_seconds_bucket{{{JOB}}}{RATE})"
    return [
        timeseries("Processing lag p50 / p95 by job",
                   promql(f"histogram_quantile(0.5, sum by ({STREAMING_JOB}, le) ({lag_buckets}))",
                          f"p50 {{{{{STREAMING_JOB}}}}}"),
                   promql(f"histogram_quantile(0.95, sum by ({STREAMING_JOB}, le) ({lag_buckets}))",
                          f"p95 {{{{{STREAMING_JOB}}}}}"),
                   unit="s", minimum=0, thresholds=((60, "red"),)),
        timeseries("Lag of the last micro-batch (oldest 1 % of its events)",
                   promql(f'max by ({STREAMING_JOB}) (smartcity_streaming_batch_lag_seconds{{{JOB}, quantile="0.01"}})',
                          f"{{{{{STREAMING_JOB}}}}}"),
                   unit="s", minimum=0, thresholds=((60, "red"),)),
        timeseries("Events read by job",
                   promql(f"sum by ({STREAMING_JOB}) (rate(smartcity_streaming_events_total{{{JOB}}}{RATE}))",
                          f"{{{{{STREAMING_JOB}}}}}"), unit="ops"),
        timeseries("Late events",
                   promql(f"sum by (topic, outcome) (rate(smartcity_streaming_late_events_total{{{JOB}}}{RATE}))",
                          "{{topic}} {{outcome}}"),
                   unit="ops", description="counted: late but still in an open window; dropped: after the watermark "
                   "closed its window."),
        timeseries("Duplicate events left out",
                   promql(f"sum by ({STREAMING_JOB}) (rate(smartcity_streaming_duplicates_total{{{JOB}}}{RATE}))",
                          f"{{{{{STREAMING_JOB}}}}}"),
                   unit="ops", minimum=0, description="Copies of an event a job had already read (the same "
                   "CloudEvent source and id: a client's retry, a producer's resend), counted once in its windows."),
        timeseries("Micro-batch duration",
                   promql(f"max by ({STREAMING_JOB}) (smartcity_streaming_batch_duration_seconds{{{JOB}}})",
                          f"{{{{{STREAMING_JOB}}}}}"), unit="s", minimum=0),
        timeseries("Watermark delay",
                   promql(f"time() - max by ({STREAMING_JOB}) (smartcity_streaming_watermark_seconds{{{JOB}}})",
                          f"{{{{{STREAMING_JOB}}}}}"),
                   unit="s", description="How far each job's event-time watermark trails the clock."),
        timeseries("Dead-lettered records by topic",
                   promql(f"sum by (topic) (rate(smartcity_streaming_dead_lettered_total{RATE}))", "{{topic}}"),
                   unit="ops"),
    ]


def _storage() -> list[dict[str, Any]]:
    stored = per_stream("SELECT $__timeGroupAlias({time}, $__interval), '{stream}' AS metric, count(*) AS events "
                        "FROM {table} WHERE $__timeFilter({time}) GROUP BY 1")
    delay = per_stream(
        "SELECT $__timeGroupAlias({time}, $__interval), '{stream}' AS metric, percentile_cont(0.95) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM stored_at - {time})) AS delay FROM {table} WHERE $__timeFilter({time}) GROUP BY 1")
    freshness = "\nUNION ALL\n".join(
        f"SELECT '{name}' AS \"table\", count(*) AS \"rows in range\", max(window_start) AS \"latest window\", "
        f"max({written}) AS \"last written\" FROM {name} WHERE $__timeFilter(window_start)"
        for name, written in (("traffic_sensor_5min", "updated_at"), ("traffic_segment_5min", "updated_at"),
                              ("mobility_index_5min", "updated_at"), ("traffic_anomalies", "detected_at")))
    return [
        timeseries("Events stored per stream", sql(f"{stored}\nORDER BY 1"), unit="short", stacked=True,
                   description="Rows written to each stream's time-series table, by observation time."),
        timeseries("Storage delay p95 per stream", sql(f"{delay}\nORDER BY 1"), unit="s",
                   description="From an event's observation time until its row was stored (ingest, bus, store)."),
        table("Streaming aggregates", sql(freshness, table=True), width=12, height=6,
              description="The streaming jobs' tables: rows whose window starts in the time range, and the newest."),
        stat("Open incidents",
             sql("SELECT now() AS \"time\", count(*) AS open FROM incident_cases WHERE state <> 'resolved'"),
             unit="short", width=6, height=6, thresholds=((1, "yellow"), (10, "red"))),
        stat("Traffic anomalies",
             sql("SELECT $__timeGroupAlias(window_start, '5m'), count(*) AS anomalies FROM traffic_anomalies "
                 "WHERE $__timeFilter(window_start) GROUP BY 1 ORDER BY 1"),
             unit="short", width=6, height=6, min_interval="5m",
             description="Sensor windows flagged as unusual, per 5 minutes (last value; the sparkline is the range)."),
        timeseries("PostgreSQL replication lag",
                   promql(f"max({REPLICA_LAG})", "replica (its own view)"),
                   promql(f"max by (replica) ({PRIMARY_REPLAY_LAG})", "{{replica}} (seen from the primary)"),
                   unit="s", minimum=0, width=24, height=6, thresholds=((REPLICATION_LAG_LIMIT_S, "red"),),
                   description="How far the data the API reads from the replica (SMARTCITY_DATABASE_READ_URL) trails "
                   "the primary; exported by the gateway processes reading from a replica, none without one."),
    ]


def overview() -> dict[str, Any]:
    return dashboard(
        UID, "Smart city — Overview",
        "The platform at a glance: functions, streaming jobs, and the data arriving in storage.",
        [("Health", _health()), ("Functions", _functions()), ("Streaming", _streaming()), ("Storage", _storage())],
        variables=[function_variable(), job_variable()],
    )
