"""The log spool and shipper without a log store: lines kept on disk until a store takes them, bounded, adopted
from dead processes; the bulk body is Elasticsearch's NDJSON."""

from __future__ import annotations

import atexit
import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smartcity.runtime import logship
from smartcity.runtime.jsonlog import JsonFormatter
from smartcity.runtime.logship import LOG_INDEX, Shipper, bulk_body
from smartcity.runtime.logspool import Spool, SpoolHandler
from smartcity.settings import Settings
from tests.ports import free_port


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class BulkStore:
    """A loopback HTTP server recording the ``_bulk`` bodies it is sent, answering ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status, self.bodies, self.paths = status, [], []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                store.paths.append(self.path)
                store.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(store.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errors":false,"items":[]}')

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/insert/elasticsearch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store():
    server = BulkStore()
    yield server
    server.close()


def test_the_bulk_body_puts_a_create_action_before_every_line():
    body = bulk_body(b'{"message":"a"}\n\n{"message":"b"}\n')
    lines = [json.loads(line) for line in body.splitlines()]
    assert lines == [{"create": {"_index": LOG_INDEX}}, {"message": "a"}, {"create": {"_index": LOG_INDEX}},
                     {"message": "b"}]
    assert body.endswith(b"\n")  # the bulk API wants the last line ended too


def test_lines_stay_spooled_while_the_store_is_unreachable_and_go_once_it_answers(tmp_path, store):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    down = Shipper(spool, f"http://127.0.0.1:{free_port()}/insert/elasticsearch")
    spool.append('{"message":"first"}')
    assert down.ship() is False and down.failures == 1
    spool.append('{"message":"second"}')
    assert down.ship() is False and down._backoff() == 2 * logship.FIRST_BACKOFF_S
    assert [batch.read_text() for batch in spool.batches()] == ['{"message":"first"}\n', '{"message":"second"}\n']
    up = Shipper(spool, store.url)
    assert up.ship() is True and spool.batches() == []
    assert store.paths == ["/insert/elasticsearch/_bulk", "/insert/elasticsearch/_bulk"]
    assert [json.loads(body.splitlines()[1])["message"] for body in store.bodies] == ["first", "second"]
    down.stop(flush=False)
    up.stop()


def test_a_refusing_store_keeps_the_batch(tmp_path):
    refusing = BulkStore(status=503)
    try:
        spool = Spool(tmp_path, max_bytes=1 << 20)
        spool.append('{"message":"kept"}')
        shipper = Shipper(spool, refusing.url)
        assert shipper.ship() is False and len(refusing.bodies) == 1
        assert [batch.read_text() for batch in spool.batches()] == ['{"message":"kept"}\n']
        shipper.stop(flush=False)
    finally:
        refusing.close()


def test_a_dead_processs_lines_are_adopted_and_shipped(tmp_path, store):
    dead = _dead_pid()
    (tmp_path / f"active-{dead}.ndjson").write_text('{"message":"left active"}\n')
    (tmp_path / f"batch-1-{dead}.ndjson").write_text('{"message":"left sealed"}\n')
    (tmp_path / "batch-2-1.ndjson").write_text('{"message":"pid 1 is alive: not ours"}\n')
    shipper = Shipper(Spool(tmp_path, max_bytes=1 << 20), store.url)
    assert shipper.ship() is True
    sent = [json.loads(body.splitlines()[1])["message"] for body in store.bodies]
    assert sent == ["left sealed", "left active"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["batch-2-1.ndjson"]
    shipper.stop()


def test_the_spool_drops_its_oldest_batches_past_its_bound(tmp_path):
    spool = Spool(tmp_path, max_bytes=1024)
    for index in range(5):
        spool.append(json.dumps({"message": f"{index}".ljust(400)}))
        spool.seal()
    kept = [json.loads(batch.read_text())["message"].strip() for batch in spool.batches()]
    assert kept == ["3", "4"] and spool.dropped_bytes == 3 * len(json.dumps({"message": "0".ljust(400)}) + "\n")


def test_configure_spools_every_log_line_as_json_with_the_service(tmp_path, store):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings(logs_url=store.url, logs_spool_dir=tmp_path, log_level="INFO")
    shipper = logship.configure(settings, "gateway")
    try:
        assert any(isinstance(handler, SpoolHandler) for handler in root.handlers)
        logging.getLogger("smartcity.tests").info("shipped %s", "line")
        shipper.stop()
    finally:
        atexit.unregister(shipper.stop)
        root.handlers[:], root.level = handlers, level
    [body] = store.bodies
    line = json.loads(body.splitlines()[1])
    assert (line["message"], line["service"], line["level"]) == ("shipped line", "gateway", "INFO")


def test_configuring_again_stops_the_shipper_started_before(tmp_path, store):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    settings = Settings(logs_url=store.url, logs_spool_dir=tmp_path, log_level="INFO")
    try:
        first = logship.configure(settings, "gateway")
        logging.getLogger("smartcity.tests").info("before")
        second = logship.configure(settings, "gateway")
        assert not first._thread.is_alive() and second._thread.is_alive()
        second.stop()
        atexit.unregister(second.stop)
    finally:
        root.handlers[:], root.level = handlers, level
    assert [json.loads(body.splitlines()[1])["message"] for body in store.bodies] == ["before"]


def test_without_a_logs_url_nothing_is_spooled(tmp_path):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert logship.configure(Settings(logs_url="", logs_spool_dir=tmp_path / "spool"), "trigger") is None
        assert not any(isinstance(handler, SpoolHandler) for handler in root.handlers)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], root.level = handlers, level
    assert not (tmp_path / "spool").exists()
