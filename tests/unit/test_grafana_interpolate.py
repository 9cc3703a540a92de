"""The expander of Grafana's variables and PostgreSQL macros gives what Grafana itself gives.

Expected strings follow Grafana's own macro engine (pkg/tsdb/grafana-postgresql-datasource/macros.go and its
tests) and its variable formatting for SQL and Prometheus data sources.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from grafana.interpolate import InterpolationError, QueryContext, expand_promql, expand_sql, format_duration

START = datetime(2018, 4, 12, 18, 0, tzinfo=timezone.utc)
CONTEXT = QueryContext(START, START + timedelta(minutes=5), variables={"zone": ["Z00", "O'Hare"], "job": ".*"})


@pytest.mark.parametrize(("sql", "expected"), [
    ("WHERE $__timeFilter(time_column)", "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
    ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__timeGroupAlias(time_column, '1h')", 'SELECT floor(extract(epoch from time_column)/3600)*3600 AS "time"'),
    # before Grafana 5.3, "$__timeGroup(...)," in a select list meant the aliased form; Grafana still reads it so
    ("SELECT $__timeGroup(time_column,'5m'), value", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'),
    ("SELECT $__time(t)", 'SELECT t AS "time"'),
    ("SELECT $__timeEpoch(t)", 'SELECT extract(epoch from t) as "time"'),
    ("WHERE t > $__timeFrom() AND t < $__timeTo()", "WHERE t > '2018-04-12T18:00:00Z' AND t < '2018-04-12T18:05:00Z'"),
    ("WHERE $__unixEpochFilter(ts)", "WHERE ts >= 1523556000 AND ts <= 1523556300"),
    ("WHERE ts > $__unixEpochFrom()", "WHERE ts > 1523556000"),
    ("GROUP BY $__timeGroup(t, $__interval)", "GROUP BY floor(extract(epoch from t)/60)*60"),
])
def test_postgres_macros(sql, expected):
    assert expand_sql(sql, CONTEXT) == expected


def test_sql_multi_value_variable_is_a_quoted_list():
    assert expand_sql("zone_id IN ($zone)", CONTEXT) == "zone_id IN ('Z00','O''Hare')"
    assert expand_sql("zone_id = ANY(ARRAY[${zone}]::text[])", CONTEXT) == "zone_id = ANY(ARRAY['Z00','O''Hare']::text[])"


def test_no_value_chosen_leaves_an_empty_list():
    context = QueryContext(START, START + timedelta(hours=1), variables={"zone": []})
    assert expand_sql("ARRAY[$zone]::text[]", context) == "ARRAY[]::text[]"


def test_promql_multi_value_variable_is_a_regex_alternative():
    context = QueryContext(START, START + timedelta(hours=1), variables={"f": ["api-traffic", "a.b"], "one": ["x+y"]})
    assert expand_promql('m{f=~"$f"}', context) == 'm{f=~"(api-traffic|a\\\\.b)"}'
    assert expand_promql('m{f=~"$one"}', context) == 'm{f=~"x\\\\+y"}'


def test_all_value_is_used_as_it_is():
    assert expand_promql('m{exported_job=~"$job"}', CONTEXT) == 'm{exported_job=~".*"}'


def test_builtin_intervals():
    context = QueryContext(START, START + timedelta(hours=6), interval=timedelta(seconds=30))
    assert expand_promql("rate(m[$__rate_interval])", context) == "rate(m[1m])"  # 4 scrape intervals at least
    assert expand_promql("rate(m[$__interval])", context) == "rate(m[30s])"
    assert expand_promql("increase(m[$__range])", context) == "increase(m[21600s])"
    wide = QueryContext(START, START + timedelta(hours=6), interval=timedelta(minutes=2))
    assert expand_promql("rate(m[$__rate_interval])", wide) == "rate(m[135s])"  # interval + one scrape interval


def test_a_panel_min_interval_raises_the_interval():
    assert CONTEXT.with_min_interval("5m").interval == timedelta(minutes=5)
    assert CONTEXT.with_min_interval("10s").interval == timedelta(minutes=1)
    assert CONTEXT.with_min_interval(None) is CONTEXT


@pytest.mark.parametrize(("span", "text"), [
    (timedelta(minutes=1), "1m"), (timedelta(seconds=90), "90s"), (timedelta(hours=2), "2h"),
    (timedelta(days=1), "1d"), (timedelta(milliseconds=250), "250ms"),
])
def test_format_duration(span, text):
    assert format_duration(span) == text


@pytest.mark.parametrize(("query", "message"), [
    ("WHERE zone_id IN ($zones)", "undefined variable $zones"),
    ("WHERE $__timeFilterr(t)", "unknown macro $__timeFilterr"),
    ("WHERE $__timeFilter()", "missing time column"),
    ("GROUP BY $__timeGroup(t)", "needs a time column and an interval"),
    ("GROUP BY $__timeGroup(t, 'soon')", "is not an interval"),
])
def test_bad_sql_is_an_error_naming_the_problem(query, message):
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$")):
        expand_sql(query, CONTEXT)


def test_undefined_promql_variable_is_an_error():
    with pytest.raises(InterpolationError, match=r"undefined variable \$function"):
        expand_promql('m{function_name=~"$function"}', CONTEXT)
