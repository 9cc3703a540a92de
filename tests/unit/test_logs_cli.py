"""``smartcity logs``: bad filters exit with 2 naming the option, a store that cannot be reached with 1; the
LogsQL it sends. (Against a real VictoriaLogs: tests/integration/test_logs_victorialogs.py.)"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.runtime.logquery import LogFilter, logsql, query_base
from tests.ports import free_port

runner = CliRunner()


@pytest.mark.parametrize("arguments, option", [
    (["--trace-id", "not-hex"], "--trace-id"),
    (["--request-id", "has space"], "--request-id"),
    (["--function", "Bad_Name"], "--function"),
    (["--since", "10x"], "--since"),
    (["--limit", "0"], "--limit"),
])
def test_a_bad_filter_exits_with_2_naming_the_option(arguments, option):
    result = runner.invoke(app, ["logs", *arguments, "--url", "http://127.0.0.1:9/insert/elasticsearch"])
    assert result.exit_code == 2 and f"error: {option}:" in result.output


def test_a_url_that_is_not_victorialogs_exits_with_2():
    result = runner.invoke(app, ["logs", "--url", "http://elasticsearch:9200"])
    assert result.exit_code == 2 and "not a VictoriaLogs insert URL" in result.output


def test_an_unreachable_store_exits_with_1():
    result = runner.invoke(app, ["logs", "--url", f"http://127.0.0.1:{free_port()}/insert/elasticsearch"])
    assert result.exit_code == 1 and "cannot query the log store" in result.output


def test_the_logsql_matches_ids_exactly_and_a_trace_id_among_several():
    query = logsql(LogFilter(request_id="r-1", trace_id="a" * 32, function="echo", since="10m", limit=5))
    assert query == (f'_time:10m request_id:="r-1" function:="echo" trace_id:"{"a" * 32}" '
                     "| sort by (_time desc) | limit 5")
    assert query_base("http://127.0.0.1:9428/insert/elasticsearch/") == "http://127.0.0.1:9428"
