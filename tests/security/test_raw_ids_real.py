"""Issue 16, must show, on the real local servers: a known raw vehicle id and driver id sent through ingest appear
afterwards in no topic, store, archive, backup or log line.

The readings of :func:`tests.security.raw_id_scan.send_readings` (two valid, one refused) go through
``ingest-taxi-vtc`` behind the real gateway into Kafka; every function of ``stack.yml`` triggered by ``taxi-vtc``
or the dead-letter topic handles the records as its trigger hands them (into PostgreSQL, Redis, FerretDB, the S3
archive); a backup is taken (pg_dump and the documents, into S3). Then everything is read back and scanned for the
raw ids: every record (key, value, headers) of the test's topics from the first offset to the last, a plain
``pg_dump`` of the test's database, every key and value of the test's Redis database, every document of the test's
FerretDB database, every object of the test's bucket (its bytes, decrypted, an archive's rows as JSON, the
backup's dump as SQL) and every captured log line (all loggers at DEBUG, and stdout/stderr). The control, the
trip's entity id, is stored in plaintext: the same scan must find it in each of those places (the topic, the dump,
a latest state in Redis, FerretDB, the archive's rows, the backup's documents and SQL, and the log lines where
pymongo logs the documents it writes), so a scan that reads nothing cannot pass.

The test has its own topics (a prefix), database, document database, bucket and Redis database, and removes them.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import uuid
from io import BytesIO
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient

from smartcity.backends.bus import open_bus
from smartcity.backends.bus.kafka import bootstrap_servers
from smartcity.backends.database import open_database
from smartcity.backends.database.postgres import conninfo_from_url
from smartcity.backends.documents import open_documents
from smartcity.backends.documents.embedded import encode
from smartcity.backends.objects import open_objects
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC, Settings
from smartcity.stack.postgres import postgres_bin_dir
from smartcity.storage.backup import Backups, documents_of
from smartcity.storage.encryption import at_rest, ensure_keyring
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from tests.credentials import ingest_headers
from tests.security.raw_id_scan import CONTROL, RAW_DRIVER, RAW_VEHICLE, STREAM, scan, send_readings, triggered_functions
from tests.storage_samples import drain, drop_real_stores, prefixed_stack, real_settings_of_own

pytestmark = pytest.mark.real
REDIS_DB = 15  # the test's own Redis database, emptied before and after (11, 12, 14: benches; 13: other tests)
TIMEOUT_S = 30.0


@pytest.fixture
def settings(real_stack, tmp_path):
    settings = real_settings_of_own(real_stack, tmp_path, REDIS_DB, topic_partitions=2)
    ensure_keyring(settings)  # archives and backups encrypted at rest, as in production
    cache = redis.Redis.from_url(settings.cache_url)
    cache.flushdb()
    yield settings
    cache.flushdb()
    cache.close()
    drop_real_stores(settings)


# --- reading everything back ----------------------------------------------------------------------------------


def topic_records(settings: Settings, topics: list[str]) -> dict[str, list[bytes]]:
    """Every record of each topic, from each partition's first offset to its last (key, value and headers)."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers(settings.bus_url, "SMARTCITY_BUS_URL"),
                         "group.id": f"raw-id-scan-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        return {topic: [record for partition in consumer.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions
                        for record in partition_records(consumer, TopicPartition(topic, partition))]
                for topic in topics}
    finally:
        consumer.close()


def partition_records(consumer: Consumer, partition: TopicPartition) -> list[bytes]:
    low, high = consumer.get_watermark_offsets(partition, timeout=TIMEOUT_S)
    consumer.assign([TopicPartition(partition.topic, partition.partition, low)])
    records = []
    while len(records) < high - low:
        message = consumer.poll(TIMEOUT_S)
        assert message is not None and not message.error(), f"{partition.topic}: {message and message.error()}"
        headers = b"".join(name.encode() + b"=" + (value or b"") + b"\n" for name, value in message.headers() or [])
        records.append(b"\n".join([message.key() or b"", message.value() or b"", headers]))
    return records


def database_dump(settings: Settings) -> bytes:
    """A plain-text pg_dump (schema and every row) of the test's database, by the stack's own pg_dump."""
    return pg_tool("pg_dump", "--format=plain", f"--dbname={conninfo_from_url(settings.database_url, 'url')}")


def pg_tool(tool: str, *arguments: str) -> bytes:
    finished = subprocess.run([str(postgres_bin_dir() / tool), *arguments], capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()
    return finished.stdout


def redis_entries(cache_url: str) -> dict[str, bytes]:
    """Every key of the test's Redis database with its value, whatever its type."""
    client = redis.Redis.from_url(cache_url)
    readers = {b"string": lambda key: [client.get(key)], b"hash": lambda key: list(client.hgetall(key).items()),
               b"set": client.smembers, b"zset": lambda key: client.zrange(key, 0, -1),
               b"list": lambda key: client.lrange(key, 0, -1)}
    try:
        return {f"redis {key.decode()}": key + b"=" + orjson.dumps(readers[client.type(key)](key), default=bytes.decode)
                for key in client.scan_iter()}
    finally:
        client.close()


def every_document(settings: Settings) -> dict[str, bytes]:
    """Every document of every collection of the test's FerretDB database, as extended JSON lines."""
    documents = open_documents(settings.documents_url, settings=settings)
    try:
        return {f"ferretdb {name}": "\n".join(encode(doc) for doc in documents_of(documents, name)).encode()
                for name in documents.collections()}
    finally:
        documents.close()


def every_object(settings: Settings) -> dict[str, bytes]:
    """Every object of the test's bucket: as stored, decrypted, and for an archive file its rows as JSON, for the
    backup's database dump its SQL (both formats compress what they hold)."""
    objects = open_objects(settings.objects_url, settings=settings)
    readable = at_rest(objects, settings)
    found: dict[str, bytes] = {}
    try:
        for key in objects.list():
            found[f"s3 {key}"], plain = objects.get(key), readable.get(key)
            found[f"s3 {key} decrypted"] = plain
            if key.endswith(".parquet"):
                found[f"s3 {key} rows"] = orjson.dumps(pq.read_table(BytesIO(plain)).to_pylist(), default=str)
            elif key.endswith(".pgdump"):
                found[f"s3 {key} sql"] = dump_as_sql(plain)
    finally:
        objects.close()
    return found


def dump_as_sql(dump: bytes) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".pgdump") as file:
        file.write(dump)
        file.flush()
        return pg_tool("pg_restore", "--file=-", file.name)


# --- the flow -------------------------------------------------------------------------------------------------


def prepare_database(settings: Settings) -> None:
    db = open_database(settings.database_url, settings=settings)
    try:
        migrate(db)
        load_reference(db)
    finally:
        db.close()


def ingest(settings: Settings, stack_file: Path) -> None:
    """The readings through ingest-taxi-vtc behind the gateway, which publishes them to Kafka."""
    with TestClient(build_gateway(stack_file, settings, [f"ingest-{STREAM}"]),
                    headers=ingest_headers(settings, [STREAM])) as gateway:
        send_readings(lambda body: gateway.post(f"/function/ingest-{STREAM}", json=body))


def run_triggered(settings: Settings, stack_file: Path, names: list[str], topics: list[str]) -> dict[str, int]:
    """Each function handles every record of its topics, as its trigger hands them; how many it handled."""
    counts = {topic: len(records) for topic, records in topic_records(settings, topics).items()}
    bus = open_bus(settings.bus_url, settings=settings)
    try:
        handled = {}
        for function in load_stack(stack_file, settings, names):
            records = [record for topic in function.spec.topics if counts.get(topic)
                       for record in drain(bus, topic, expected=counts[topic])]
            handled[function.name] = FunctionTrigger(function).process(records).handled
        return handled
    finally:
        bus.close()


def take_backup(settings: Settings) -> None:
    db, documents = open_database(settings.database_url, settings=settings), open_documents(settings.documents_url,
                                                                                             settings=settings)
    try:
        Backups(open_objects(settings.objects_url, settings=settings), settings=settings).create(
            db, settings.database_url, documents)
    finally:
        db.close()
        documents.close()


def test_raw_ids_sent_through_ingest_appear_in_no_real_topic_store_archive_backup_or_log(settings, tmp_path, caplog,
                                                                                       capfd):
    caplog.set_level(logging.DEBUG)
    prefix = f"raw-ids-{uuid.uuid4().hex[:8]}-"
    topics = [prefix + STREAM, prefix + DEAD_LETTER_TOPIC]
    names = triggered_functions({STREAM, DEAD_LETTER_TOPIC})
    stack_file = prefixed_stack(tmp_path, prefix, [f"ingest-{STREAM}", *names])
    bus = open_bus(settings.bus_url, settings=settings)
    bus.create_topics(topics, settings.topic_partitions)
    try:
        prepare_database(settings)
        ingest(settings, stack_file)
        handled = run_triggered(settings, stack_file, names, topics)
        assert {name: handled[name] for name in ("store-timeseries", "store-documents", "archive-raw")} == {
            "store-timeseries": 2, "store-documents": 2, "archive-raw": 2}, handled
        take_backup(settings)
        records = topic_records(settings, topics)
        captured = capfd.readouterr()
        everything = {**{f"topic {topic}": b"\n".join(found) for topic, found in records.items()},
                      "postgresql": database_dump(settings), **redis_entries(settings.cache_url),
                      **every_document(settings), **every_object(settings), "log records": caplog.text.encode(),
                      "stdout": captured.out.encode(), "stderr": captured.err.encode()}
    finally:
        bus.delete_topics(topics)
        bus.close()

    assert len(records[prefix + STREAM]) == 2
    assert scan(everything, RAW_VEHICLE) == []
    assert scan(everything, RAW_DRIVER) == []
    found = " ".join(scan(everything, CONTROL))  # the control: a value stored in plaintext is found in every place
    # the logs: pymongo's DEBUG lines of each command carry the documents written and read
    places = ["topic " + prefix + STREAM, "postgresql", "redis latest:", "ferretdb ", "rows", "backups/", "sql",
              "log records"]
    assert [place for place in places if place not in found] == [], found
