"""One reading followed by its trace id, on the real local stack: the gateway's ingest function (HTTP, the
caller's ``traceparent``) -> Kafka (``ce_traceparent``) -> the store-timeseries trigger -> PostgreSQL, and the log
lines of the way found in the stack's VictoriaLogs by that trace id, the stored row's event id among them."""

import logging
import shutil
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.privacy import PSEUDONYM_KEY_SECRET
from smartcity.runtime import tracing
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.jsonlog import JsonFormatter
from smartcity.runtime.loader import load_stack
from smartcity.runtime.logquery import LogFilter, query_base, query_logs
from smartcity.runtime.logship import NotWhileShipping, Shipper
from smartcity.runtime.logspool import Spool, SpoolHandler
from smartcity.runtime.trigger import Triggers
from smartcity.settings import DEAD_LETTER_TOPIC
from smartcity.storage.migrate import migrate
from smartcity.storage.tables import STREAM_TABLES
from tests.credentials import ingest_headers
from tests.storage_samples import drain, drop_real_stores, prefixed_stack, real_settings, sample_events

pytestmark = [pytest.mark.real, pytest.mark.e2e]
TRACE_ID = uuid.uuid4().hex
PARENT = f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"
WAIT_S = 90


@pytest.fixture
def settings(real_stack, tmp_path):
    secrets = tmp_path / "secrets"
    shutil.copytree(real_stack["SMARTCITY_SECRETS_DIR"], secrets)
    (secrets / PSEUDONYM_KEY_SECRET).write_text(uuid.uuid4().hex)
    settings = real_settings({**real_stack, "SMARTCITY_SECRETS_DIR": str(secrets)}, uuid.uuid4().hex[:10],
                             logs_spool_dir=tmp_path / "spool")
    yield settings
    drop_real_stores(settings)


@pytest.fixture
def shipped_lines(settings):
    """The runtime's log lines (the functions' DEBUG ones too) shipped to the stack's VictoriaLogs meanwhile."""
    spool = Spool(settings.logs_spool_dir, settings.logs_spool_max_bytes)
    shipper = Shipper(spool, settings.logs_url, max_backoff_s=1.0)
    handler = SpoolHandler(spool, JsonFormatter("e2e"))
    handler.addFilter(NotWhileShipping())
    root, functions = logging.getLogger(), logging.getLogger("smartcity.functions")
    levels = root.level, functions.level
    root.setLevel(logging.INFO)
    functions.setLevel(logging.DEBUG)
    root.addHandler(handler)
    shipper.start()
    yield query_base(settings.logs_url)
    root.removeHandler(handler)
    root.setLevel(levels[0])
    functions.setLevel(levels[1])
    shipper.stop()


def test_a_reading_is_followed_by_its_trace_id_from_ingest_to_postgresql(settings, shipped_lines, tmp_path):
    prefix = f"trace-{uuid.uuid4().hex[:8]}-"
    topics = [prefix + "weather", prefix + DEAD_LETTER_TOPIC]
    bus = open_bus(settings.bus_url, settings=settings)
    bus.create_topics(topics, settings.topic_partitions)
    db = open_database(settings.database_url, settings=settings)
    migrate(db)
    stack_file = prefixed_stack(tmp_path, prefix, ["ingest-weather", "store-timeseries"])
    table = STREAM_TABLES["weather"].table
    try:
        with Triggers(load_stack(stack_file, settings, ["store-timeseries"])), \
                TestClient(build_gateway(stack_file, settings, ["ingest-weather"]),
                           headers=ingest_headers(settings)) as gateway:
            reading = sample_events()["weather"].model_dump(mode="json")
            answer = gateway.post("/function/ingest-weather", json=reading, headers={"traceparent": PARENT})
            assert answer.status_code == 202, answer.text
            assert tracing.parse(answer.headers["traceresponse"]).trace_id == TRACE_ID
            [record] = drain(bus, prefix + "weather", expected=1)
            headers = {name: value.decode() for name, value in record.headers}
            on_kafka = tracing.parse(headers["ce_traceparent"])
            assert on_kafka.trace_id == TRACE_ID and on_kafka.span_id != PARENT.split("-")[2]
            event_id = headers["ce_id"]
            deadline = time.monotonic() + WAIT_S
            while not db.query(f"SELECT event_id FROM {table} WHERE event_id = :id", {"id": event_id}):
                assert time.monotonic() < deadline, f"{event_id} not stored within {WAIT_S} s"
                time.sleep(0.5)
        lines = _lines_of_trace(shipped_lines, lambda line: line.get("function") == "store-timeseries")
        [stored] = [line for line in lines if line.get("function") == "store-timeseries"]
        assert event_id in stored["event_id"].split(",") and stored["_msg"].startswith("stored 1 new rows")
        assert TRACE_ID in stored["trace_id"].split(",")
    finally:
        bus.delete_topics(topics)
        bus.close()
        db.close()


def _lines_of_trace(server: str, matching) -> list[dict]:
    deadline = time.monotonic() + WAIT_S
    while True:
        lines = query_logs(server, LogFilter(trace_id=TRACE_ID, since="30m"))
        if any(matching(line) for line in lines):
            return lines
        assert time.monotonic() < deadline, f"no matching line of trace {TRACE_ID} in the log store: {lines}"
        time.sleep(0.5)
