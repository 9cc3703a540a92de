"""Query pieces the dashboards share: the zone variable and its filter, the stream tables, the streaming job label.

The streaming jobs' metrics carry a ``job`` label of their own (``traffic``, ``mobility``, ``anomalies``);
Prometheus keeps its target label ``job`` (``streaming``) and renames theirs ``exported_job`` (its default,
``honor_labels: false``), so the dashboards read the job's name from ``exported_job``.
"""

from __future__ import annotations

from typing import Any

from grafana.datasources import POSTGRES, PROMETHEUS
from grafana.panels import variable
from smartcity.storage.tables import TABLE_OF_STREAM

STREAMING_JOB = "exported_job"
API_FUNCTIONS = 'function_name=~"api-.*"'


def zone_variable() -> dict[str, Any]:
    return variable("zone", "Zone", "SELECT zone_id FROM zones ORDER BY zone_id", datasource=POSTGRES,
                    description="City zones (grid cells of the reference data); All shows every zone.")


def in_zones(column: str = "zone_id") -> str:
    """The SQL condition "in the chosen zones"; an array, so that no zone at all is still valid SQL."""
    return f"{column} = ANY(ARRAY[$zone]::text[])"


def function_variable() -> dict[str, Any]:
    return variable("function", "Function", "label_values(gateway_function_invocation_total, function_name)",
                    datasource=PROMETHEUS, all_value=".*")


def job_variable() -> dict[str, Any]:
    return variable("job", "Streaming job", f"label_values(smartcity_streaming_events_total, {STREAMING_JOB})",
                    datasource=PROMETHEUS, all_value=".*")


def per_stream(select: str, time_column: str = "observed_at") -> str:
    """One ``SELECT`` per stream table (``{table}``, ``{stream}`` and ``{time}`` filled in), as a UNION ALL."""
    parts = [select.format(table=table, stream=stream, time=time_column) for stream, table in TABLE_OF_STREAM.items()]
    return "\nUNION ALL\n".join(parts)
