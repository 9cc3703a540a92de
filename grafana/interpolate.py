"""What Grafana does to a query before its data source runs it, so the queries can be run without Grafana.

Grafana replaces dashboard variables (``$zone``, ``${zone}``) and its built-ins (``$__interval``,
``$__rate_interval``, ``$__range``), formatting a multi-value variable for the target data source: quoted and
comma-separated for SQL (``'Z11','Z12'``), a regex alternative for PromQL (``(a|b)``). The PostgreSQL data source
then expands its macros (``$__timeFilter(col)``, ``$__timeGroupAlias(col, '5m')``, ...) exactly as Grafana's
``pkg/tsdb/grafana-postgresql-datasource/macros.go`` does. Anything left that looks like a variable or a macro
is an :class:`InterpolationError`: a query that names an undefined variable fails here, as it would in Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

SCRAPE_INTERVAL = timedelta(seconds=15)  # the stack's Prometheus scrape interval ($__rate_interval depends on it)
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_MACRO = re.compile(r"\$(\w+)\(([^)]*)\)")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}


class InterpolationError(ValueError):
    """A query names a variable or macro that does not exist, or gives a macro bad arguments."""


@dataclass(frozen=True)
class QueryContext:
    """The time range, interval and variable values a panel is drawn with. A variable's value is a list (its
    chosen values) or a plain string (an "All" value such as ``.*``, used as it is)."""

    time_from: datetime
    time_to: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, Sequence[str] | str] = field(default_factory=dict)

    @classmethod
    def last(cls, span: timedelta, **kwargs) -> QueryContext:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        return cls(time_from=now - span, time_to=now, **kwargs)

    def with_min_interval(self, minimum: str | None) -> QueryContext:
        """The context of a panel whose ``interval`` (minimum interval) is ``minimum``."""
        if minimum is None:
            return self
        return replace(self, interval=max(self.interval, parse_duration(minimum)))


def parse_duration(text: str) -> timedelta:
    """Grafana's interval syntax: ``500ms``, ``15s``, ``5m``, ``1h``, ``1d``, ``1w``, ``1y``."""
    match = _DURATION.match(text.strip().strip("'"))
    if match is None:
        raise InterpolationError(f"{text!r} is not an interval such as 30s, 5m or 1h")
    return timedelta(milliseconds=int(match[1]) * _UNITS_MS[match[2]])


def format_duration(span: timedelta) -> str:
    """The largest whole unit, as Grafana writes ``$__interval``: ``1m``, ``90s``, ``2h``."""
    ms = int(span.total_seconds() * 1000)
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def _builtins(context: QueryContext) -> dict[str, str]:
    interval_s = context.interval.total_seconds()
    scrape_s = SCRAPE_INTERVAL.total_seconds()
    rate_s = max(interval_s + scrape_s, 4 * scrape_s)
    range_s = int((context.time_to - context.time_from).total_seconds())
    return {
        "__interval": format_duration(context.interval), "__interval_ms": str(int(interval_s * 1000)),
        "__rate_interval": format_duration(timedelta(seconds=rate_s)),
        "__range": f"{range_s}s", "__range_s": str(range_s), "__range_ms": str(range_s * 1000),
    }


def _replace_variables(query: str, context: QueryContext, format_values) -> str:
    builtins = _builtins(context)

    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        if name in builtins:
            return builtins[name]
        if name in context.variables:
            value = context.variables[name]
            return value if isinstance(value, str) else format_values(list(value))
        return match[0]  # a macro, or an unknown name: the data source's turn (which rejects the unknown)

    return _VARIABLE.sub(replace, query)


def _regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape: a literal value inside a PromQL regex string."""
    value = value.replace("\\", "\\" * 4)
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda match: "\\\\" + match[0], value)


def expand_promql(expr: str, context: QueryContext) -> str:
    """A PromQL expression as Grafana sends it to Prometheus."""

    def as_regex(values: list[str]) -> str:
        escaped = [_regex_escape(value) for value in values]
        return escaped[0] if len(escaped) == 1 else f"({'|'.join(escaped)})"

    expanded = _replace_variables(expr, context, as_regex)
    if leftover := _VARIABLE.search(expanded):
        raise InterpolationError(f"undefined variable {leftover[0]} in {expr!r}")
    return expanded


def _rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: no fraction when whole seconds, a ``Z`` suffix."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def _seconds(span: timedelta) -> str:
    seconds = span.total_seconds()
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


def _postgres_macro(name: str, args: list[str], context: QueryContext) -> str:
    start, end = _rfc3339(context.time_from), _rfc3339(context.time_to)
    if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args[0]:
        raise InterpolationError(f"missing time column argument for macro ${name}")
    if name in ("__timeGroup", "__timeGroupAlias") and len(args) < 2:
        raise InterpolationError(f"macro ${name} needs a time column and an interval")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "__timeFrom":
        return f"'{start}'"
    if name == "__timeTo":
        return f"'{end}'"
    if name == "__unixEpochFilter":
        low, high = int(context.time_from.timestamp()), int(context.time_to.timestamp())
        return f"{args[0]} >= {low} AND {args[0]} <= {high}"
    if name in ("__timeGroup", "__timeGroupAlias"):
        step = _seconds(parse_duration(args[1]))
        group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
        return group + (' AS "time"' if name == "__timeGroupAlias" else "")
    raise InterpolationError(f"unknown macro ${name}")


def expand_sql(sql: str, context: QueryContext) -> str:
    """A PostgreSQL query as Grafana runs it: variables quoted for SQL, then the data source's macros."""

    def as_sql_list(values: list[str]) -> str:
        return ",".join("'" + value.replace("'", "''") + "'" for value in values)

    expanded = _replace_variables(sql, context, as_sql_list)
    expanded = expanded.replace("$__unixEpochFrom()", str(int(context.time_from.timestamp())))
    expanded = expanded.replace("$__unixEpochTo()", str(int(context.time_to.timestamp())))

    def macro(match: re.Match) -> str:
        name, args = match[1], [arg.strip() for arg in match[2].split(",")]
        # Grafana's pre-5.3 rule: "$__timeGroup(...)," (a comma right after it) means the aliased form
        if name == "__timeGroup" and expanded[match.end():match.end() + 1] == ",":
            name = "__timeGroupAlias"
        return _postgres_macro(name, args, context)

    expanded = _MACRO.sub(macro, expanded)
    if leftover := _VARIABLE.search(expanded):
        raise InterpolationError(f"undefined variable {leftover[0]} in {sql.strip()[:80]!r}")
    return expanded
