"""The real local stack (``smartcity stack``): health, idempotent ``up``, a killed service seen and brought back,
a stop that leaves no process, Prometheus's targets, and one smoke call per server with the platform's clients.

Tests that kill or stop a server do it to a private instance (own stack folder, free port), so the shared stack
that other tests, and other sessions on this machine, are using keeps running.
"""

from __future__ import annotations

import io
import os
import signal
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from smartcity import stack
from smartcity.events import PLATFORM_TOPICS
from smartcity.runtime.internal import health_port
from smartcity.settings import get_settings
from smartcity.stack.base import port_open
from smartcity.stack.processes import alive_processes, process_tree

pytestmark = pytest.mark.real


def _wait_until(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_every_service_is_healthy_and_reports_its_version(real_stack):
    rows = stack.status()
    assert [row.service for row in rows] == list(stack.SERVICES)
    assert [row.service for row in rows if not row.healthy] == []
    assert all(row.version and row.version[0].isdigit() for row in rows), rows
    assert all(row.address.startswith("127.0.0.1:") for row in rows)


def test_up_again_is_harmless_and_starts_nothing(real_stack):
    pids_before = {row.service: row.pid for row in stack.status()}
    assert stack.up() == []
    assert {row.service: row.pid for row in stack.status()} == pids_before


def test_a_killed_service_is_reported_unhealthy_and_up_brings_it_back(private_stack):
    assert stack.up(["redis"]) == ["redis"]
    (killed,) = stack.status(["redis"])
    assert killed.healthy and killed.pid

    os.kill(killed.pid, signal.SIGKILL)
    assert _wait_until(lambda: not alive_processes([killed.pid]))

    (seen,) = stack.status(["redis"])
    assert not seen.healthy
    assert stack.up(["redis"]) == ["redis"]
    (back,) = stack.status(["redis"])
    assert back.healthy and back.pid != killed.pid


def test_stop_then_start_leaves_no_process_behind(private_stack):
    import psycopg

    settings = get_settings()
    stack.up(["postgres"])
    (first,) = stack.status(["postgres"])
    # An open client session: its server process must end with the rest.
    client = psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user="smartcity", dbname="smartcity")
    first_processes = process_tree(first.pid)
    assert len(first_processes) > 2  # the postmaster, its workers and our session's backend

    stack.down(["postgres"])
    assert alive_processes(first_processes) == []
    assert not port_open(settings.postgres_port)
    assert not (private_stack / "postgres" / "postgres.pid").exists()
    client.close()

    assert stack.up(["postgres"]) == ["postgres"]
    (second,) = stack.status(["postgres"])
    assert second.healthy and second.pid != first.pid
    second_processes = process_tree(second.pid)
    stack.down(["postgres"])
    assert alive_processes(second_processes) == []
    assert not port_open(settings.postgres_port)


def test_up_stops_what_it_started_when_another_service_fails(private_stack):
    import socket

    settings = get_settings()
    with socket.socket() as foreign:  # PostgreSQL's port taken by a process that is not the stack's
        foreign.bind(("127.0.0.1", settings.postgres_port))
        foreign.listen()
        with pytest.raises(stack.StackError, match="postgres: port .* is already taken"):
            stack.up(["redis", "postgres"])
    (redis,) = stack.status(["redis"])
    assert not redis.healthy and redis.pid is None and not port_open(settings.redis_port)  # up, then down again


def test_prometheus_api_lists_the_configured_targets(real_stack):
    settings = get_settings()
    url = real_stack["SMARTCITY_PROMETHEUS_URL"]
    expected = {
        f"http://127.0.0.1:{settings.prometheus_port}/metrics",
        f"http://127.0.0.1:{health_port(settings)}/metrics",  # the gateway's internal port
        f"http://127.0.0.1:{settings.streaming_metrics_port}/metrics",
        f"http://127.0.0.1:{settings.trigger_metrics_port}/metrics",
    }

    def scrape_urls() -> set[str]:
        answer = httpx.get(f"{url}/api/v1/targets", timeout=5).raise_for_status().json()
        assert answer["status"] == "success"
        return {target["scrapeUrl"] for target in answer["data"]["activeTargets"]}

    assert _wait_until(lambda: scrape_urls() >= expected), scrape_urls()


# One smoke call per server, with the client library the platform uses. The full backend contract suites are in
# tests/contract/.


def test_kafka_has_the_platform_topics_and_carries_a_message(real_stack):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    servers = urlsplit(real_stack["SMARTCITY_BUS_URL"]).netloc
    admin = AdminClient({"bootstrap.servers": servers})
    topics = admin.list_topics(timeout=10).topics
    partitions = get_settings().topic_partitions
    assert {name: len(topics[name].partitions) for name in PLATFORM_TOPICS if name in topics} == {
        name: partitions for name in PLATFORM_TOPICS
    }

    topic = f"test-stack-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=15)
    try:
        producer = Producer({"bootstrap.servers": servers})
        producer.produce(topic, key=b"k", value=b"hello")
        assert producer.flush(10) == 0
        consumer = Consumer(
            {"bootstrap.servers": servers, "group.id": topic, "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([topic])
        try:
            message = None
            deadline = time.monotonic() + 30
            while message is None and time.monotonic() < deadline:
                message = consumer.poll(1.0)
            assert message is not None and message.error() is None
            assert (message.key(), message.value()) == (b"k", b"hello")
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result(timeout=15)


def test_postgres_answers_as_the_platform_role(real_stack):
    import psycopg

    with psycopg.connect(real_stack["SMARTCITY_DATABASE_URL"]) as connection:
        assert connection.execute("SELECT 1, current_user, current_database()").fetchone() == (1, "smartcity", "smartcity")


def test_ferretdb_stores_and_finds_a_document_with_pymongo(real_stack):
    from pymongo import MongoClient

    url = real_stack["SMARTCITY_DOCUMENTS_URL"]
    with MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        collection = client.get_default_database()[f"test_stack_{uuid.uuid4().hex[:8]}"]
        try:
            collection.insert_one({"sensor": "s-1", "speed_kmh": 42.5})
            assert collection.find_one({"sensor": "s-1"}, {"_id": 0}) == {"sensor": "s-1", "speed_kmh": 42.5}
        finally:
            collection.drop()


def test_redis_pings_sets_and_gets(real_stack):
    import redis

    key = f"test-stack:{uuid.uuid4().hex}"
    with redis.Redis.from_url(real_stack["SMARTCITY_CACHE_URL"]) as client:
        assert client.ping()
        try:
            client.set(key, "42", ex=60)
            assert client.get(key) == b"42"
        finally:
            client.delete(key)


def test_s3_puts_gets_lists_and_deletes_with_the_minio_client(real_stack):
    from minio import Minio

    location = urlsplit(real_stack["SMARTCITY_OBJECTS_URL"])
    secrets = Path(real_stack["SMARTCITY_SECRETS_DIR"])
    client = Minio(
        location.netloc,
        access_key=(secrets / "s3-access-key").read_text().strip(),
        secret_key=(secrets / "s3-secret-key").read_text().strip(),
        secure=False,
    )
    bucket = location.path.strip("/")
    assert client.bucket_exists(bucket)
    prefix = f"test-stack/{uuid.uuid4().hex[:8]}/"
    client.put_object(bucket, f"{prefix}a.json", io.BytesIO(b'{"a": 1}'), 8, content_type="application/json")
    try:
        assert client.get_object(bucket, f"{prefix}a.json").read() == b'{"a": 1}'
        assert [item.object_name for item in client.list_objects(bucket, prefix=prefix, recursive=True)] == [
            f"{prefix}a.json"
        ]
    finally:
        client.remove_object(bucket, f"{prefix}a.json")
    assert list(client.list_objects(bucket, prefix=prefix, recursive=True)) == []

    scratch = f"test-stack-{uuid.uuid4().hex[:8]}"
    client.make_bucket(scratch)
    assert client.bucket_exists(scratch)
    client.remove_bucket(scratch)
    assert not client.bucket_exists(scratch)


def test_up_reloads_a_running_prometheus_whose_configuration_is_out_of_date(real_stack):
    from smartcity.stack.prometheus import PrometheusService

    prometheus = PrometheusService(get_settings())
    pid = prometheus.pid()
    prometheus.config_file.write_text(prometheus.config().split("\n  # The local function gateway")[0] + "\n")
    assert stack.up(["prometheus"]) == []  # running: not started again, only reloaded
    assert prometheus.pid() == pid
    assert prometheus.config_file.read_text() == prometheus.config()


def test_kafka_formats_its_storage_whatever_its_cluster_id_starts_with(real_stack, tmp_path):
    # One random id in 64 starts with "-", which the storage tool read as an option: the stack did not start.
    from smartcity.stack.kafka import KafkaService, new_cluster_id

    assert not any(new_cluster_id().startswith("-") for _ in range(2000))
    settings = get_settings().model_copy(update={"stack_dir": tmp_path, "stack_tls": False})
    kafka = KafkaService(settings)
    kafka.dir.mkdir(parents=True)
    (kafka.dir / "cluster-id").write_text("-" + new_cluster_id()[1:])  # as an older stack may have written it
    kafka.prepare()
    assert (kafka.data_dir / "meta.properties").read_text().count("cluster.id=-") == 1
