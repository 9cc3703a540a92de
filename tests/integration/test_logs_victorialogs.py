"""Centralized logs for real: a function's log line, written while the gateway serves a request, is found in a
VictoriaLogs (the test's own) by the request's id, also when the store was down while the line was written."""

from __future__ import annotations

import atexit
import json
import logging
import time
import uuid

import httpx
import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.runtime import logship, tracing
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.logquery import LogFilter
from smartcity.runtime.logship import Shipper
from smartcity.runtime.logspool import Spool
from tests.fixtures.functions.helpers import embedded_settings, reading, serving, write_stack
from tests.log_store import OwnedVictoriaLogs


@pytest.fixture
def victorialogs(tmp_path):
    store = OwnedVictoriaLogs(tmp_path / "victorialogs")
    store.start()
    yield store
    store.stop()


@pytest.fixture
def shipped(tmp_path, victorialogs):
    """The settings of a gateway whose log lines are shipped to the test's VictoriaLogs (``logship.configure``)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = embedded_settings(tmp_path, logs_url=victorialogs.logs_url, logs_spool_dir=tmp_path / "spool")
    shipper = logship.configure(settings, "gateway")
    yield settings, shipper
    shipper.stop()
    atexit.unregister(shipper.stop)
    root.handlers[:], root.level = handlers, level


def _invoke_echo(client: httpx.Client, request_id: str) -> httpx.Response:
    message = sdk_http.to_binary(reading("s1", 2), JSONFormat())
    response = client.post("/function/echo", headers={**message.headers, "x-request-id": request_id},
                           content=message.body)
    assert response.status_code == 200, response.text
    return response


def test_a_functions_log_line_is_found_in_the_log_store_by_its_request_id(tmp_path, victorialogs, shipped):
    settings, _ = shipped
    request_id = f"req-{uuid.uuid4().hex}"
    with serving(build_gateway(write_stack(tmp_path), settings)) as url, httpx.Client(base_url=url) as client:
        response = _invoke_echo(client, request_id)
    trace_id = tracing.parse(response.headers["traceresponse"]).trace_id
    lines = victorialogs.wait_for(LogFilter(request_id=request_id, since="10m"),
                                  lambda line: line["_msg"].startswith("echoing"))
    [line] = [line for line in lines if line["_msg"].startswith("echoing")]
    assert (line["function"], line["service"], line["trace_id"]) == ("echo", "gateway", trace_id)
    by_trace = victorialogs.wait_for(LogFilter(trace_id=trace_id, function="echo", since="10m"))
    assert [found["request_id"] for found in by_trace] == [request_id]
    printed = CliRunner().invoke(app, ["logs", "--url", victorialogs.logs_url, "--request-id", request_id, "--json"])
    assert printed.exit_code == 0, printed.output
    assert any(json.loads(text).get("_msg", "").startswith("echoing") for text in printed.stdout.splitlines())


def test_lines_written_while_the_log_store_is_down_arrive_once_it_is_back(tmp_path, victorialogs):
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    spool = Spool(tmp_path / "spool", max_bytes=1 << 20)
    shipper = Shipper(spool, victorialogs.logs_url, max_backoff_s=1.0)
    handler = logship.SpoolHandler(spool, logship.jsonlog.JsonFormatter("gateway"))
    handler.addFilter(logship.NotWhileShipping())
    root.addHandler(handler)
    request_id = f"req-{uuid.uuid4().hex}"
    try:
        shipper.start()
        victorialogs.stop()
        with serving(build_gateway(write_stack(tmp_path), embedded_settings(tmp_path))) as url, \
                httpx.Client(base_url=url) as client:
            _invoke_echo(client, request_id)
        deadline = time.monotonic() + 20
        while shipper.failures < 3:  # the shipper tried, and failed, several times
            assert time.monotonic() < deadline, "the shipper did not try to post"
            time.sleep(0.2)
        spooled = "".join(batch.read_text() for batch in spool.batches())
        assert request_id in spooled
        victorialogs.start()
        lines = victorialogs.wait_for(LogFilter(request_id=request_id, since="10m"),
                                      lambda line: line["_msg"].startswith("echoing"))
        assert {line["function"] for line in lines if line["_msg"].startswith("echoing")} == {"echo"}
        deadline = time.monotonic() + 10
        while spool.batches():  # deleted once the store took them
            assert time.monotonic() < deadline, spool.batches()
            time.sleep(0.2)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        shipper.stop(flush=False)
