"""Reading the centralized logs back: the log lines of a request, a trace or a function, from VictoriaLogs.

:func:`logsql` turns the filters into a LogsQL query (exact match on the request id and the function, a phrase
match on the trace id, as a batch's line names several, comma-separated) and :func:`query_logs` asks
``/select/logsql/query`` for it, oldest line first. ``smartcity logs`` and the tests use it; Grafana's
VictoriaLogs datasource speaks the same LogsQL.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import BaseModel, Field, field_validator

from smartcity.runtime.request_context import REQUEST_ID

INSERT_PATH = "/insert/elasticsearch"  # VictoriaLogs' Elasticsearch API: SMARTCITY_LOGS_URL is the server plus this
QUERY_PATH = "/select/logsql/query"
_SINCE = re.compile(r"[1-9][0-9]*(s|m|h|d|w)")


class LogFilter(BaseModel):
    """What to look for; every filter given must hold."""

    request_id: str | None = Field(default=None, pattern=f"^{REQUEST_ID.pattern}$")
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    function: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    since: str = Field(default="1h", description="How far back: a number and s, m, h, d or w.")
    limit: int = Field(default=100, ge=1, le=10000)

    @field_validator("since")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _SINCE.fullmatch(value):
            raise ValueError(f"{value!r} is not a duration like 10m, 2h or 1d")
        return value


def logsql(chosen: LogFilter) -> str:
    """The LogsQL query of the filter: the newest ``limit`` lines, newest first."""
    parts = [f"_time:{chosen.since}"]
    for field, value in (("request_id", chosen.request_id), ("function", chosen.function)):
        if value:
            parts.append(f"{field}:={json.dumps(value)}")
    if chosen.trace_id:
        parts.append(f"trace_id:{json.dumps(chosen.trace_id)}")
    return " ".join(parts) + f" | sort by (_time desc) | limit {chosen.limit}"


def query_base(logs_url: str) -> str:
    """The VictoriaLogs server of an insert URL (``http://host:9428/insert/elasticsearch``); ValueError for a URL
    that is not one (an Elasticsearch is read with its own tools: Kibana, Grafana's elasticsearch datasource)."""
    base = logs_url.rstrip("/")
    if not base.endswith(INSERT_PATH):
        raise ValueError(f"{logs_url!r} is not a VictoriaLogs insert URL (…{INSERT_PATH}); smartcity logs reads "
                         "VictoriaLogs only")
    return base.removesuffix(INSERT_PATH)


def query_logs(server: str, chosen: LogFilter, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The matching log lines, oldest first (``_time`` and ``_msg`` are VictoriaLogs' names of time and message)."""
    response = httpx.post(server.rstrip("/") + QUERY_PATH, data={"query": logsql(chosen)}, timeout=timeout_s)
    response.raise_for_status()
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    return sorted(lines, key=lambda line: line.get("_time", ""))
