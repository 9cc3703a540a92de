"""The Kafka event bus (``kafka://host:port[,host:port][?librdkafka.option=value]``), on confluent-kafka.

The producer is idempotent with ``acks=all``: a record is written once, in order, even when the client retries.
Keyed records are partitioned with ``murmur2_random``, the Java client's partitioner, so a key lands in the same
partition whichever language published it. Consumers never auto-commit: :meth:`KafkaConsumer.commit` commits,
per partition, the offset after the highest record handled. Query options of the URL are passed to librdkafka
as they are (``?security.protocol=SSL``), for producer, consumer and admin client alike. Over SSL the broker's
certificate and host name are verified, against ``SMARTCITY_TLS_CA_FILE`` when set and the URL names no
``ssl.ca.location``.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence
from urllib.parse import urlsplit

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from smartcity.backends._url import CONNECT_TIMEOUT_S, query_options, tls_ca_file, unreachable
from smartcity.backends.bus.base import DeliveryError, Record, check_headers, check_name, offsets_to_commit
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

log = logging.getLogger(__name__)
ADMIN_TIMEOUT_S = 30.0
SESSION_TIMEOUT_MS = 10_000  # of consumers; the URL's ?session.timeout.ms= wins


def bootstrap_servers(url: str, setting: str) -> str:
    """``host:port,host:port`` from ``kafka://host:port,host:port``."""
    hosts = urlsplit(url).netloc
    servers = [server.strip() for server in hosts.split(",") if server.strip()]
    if not servers or not all(":" in server and server.rsplit(":", 1)[1].isdigit() for server in servers):
        raise ConfigurationError(setting, f"{url!r}: expected kafka://host:port[,host:port]")
    return ",".join(servers)


def _with_tls(config: dict[str, str], settings: Settings | None) -> dict[str, str]:
    """Over SSL: verify the broker's host name, against the CA of the settings unless the URL names one."""
    if config.get("security.protocol", "").upper() not in ("SSL", "SASL_SSL"):
        return config
    tls = {"ssl.endpoint.identification.algorithm": "https"}
    if (ca_file := tls_ca_file(settings)) is not None:
        tls["ssl.ca.location"] = ca_file
    return {**tls, **config}


def _log_client_error(error: KafkaError) -> None:
    # librdkafka retries broker connections by itself: its complaints go to the log, not to stderr.
    log.warning("kafka client: %s", error)


class KafkaBus:
    """Publishes through one idempotent producer; opens one confluent-kafka consumer per group member."""

    def __init__(self, config: dict[str, str], setting: str, replication_factor: int = -1) -> None:
        self.config = {**config, "error_cb": _log_client_error, "logger": log}
        self.replication_factor = replication_factor  # of the topics it creates; -1: the broker's default
        self.admin = AdminClient(self.config)
        try:
            self.admin.list_topics(timeout=CONNECT_TIMEOUT_S)
        except KafkaException as error:
            raise unreachable(setting, "Kafka", config["bootstrap.servers"], error) from None
        self.producer = Producer(
            {
                **self.config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "message.timeout.ms": 30000,
            }
        )
        self._failures: list[str] = []

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> KafkaBus:
        config = {"bootstrap.servers": bootstrap_servers(url, setting), **query_options(url)}
        return cls(_with_tls(config, settings), setting, settings.kafka_replication_factor if settings is not None else -1)

    def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        for topic in topics:
            check_name("topic", topic)
        existing = self.admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        new = [NewTopic(t, num_partitions=partitions, replication_factor=self.replication_factor)
               for t in topics if t not in existing]
        if new:
            try:
                self._wait(self.admin.create_topics(new, operation_timeout=ADMIN_TIMEOUT_S),
                           KafkaError.TOPIC_ALREADY_EXISTS)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.INVALID_REPLICATION_FACTOR:
                    raise
                raise ConfigurationError("SMARTCITY_KAFKA_REPLICATION_FACTOR", f"{self.replication_factor} replicas "
                                         f"refused by the cluster: {error.args[0].str()}") from None
            self._wait_for_metadata(topics, present=True)

    def delete_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            check_name("topic", topic)
        existing = self.admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
        doomed = [t for t in topics if t in existing]
        if doomed:
            self._wait(self.admin.delete_topics(doomed, operation_timeout=ADMIN_TIMEOUT_S), KafkaError.UNKNOWN_TOPIC_OR_PART)
            self._wait_for_metadata(doomed, present=False)

    @staticmethod
    def _wait(futures: dict, harmless: int) -> None:
        for topic, future in futures.items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as error:
                if error.args[0].code() != harmless:
                    raise

    def _wait_for_metadata(self, topics: Sequence[str], present: bool) -> None:
        """Until the broker's metadata shows the change, so the next producer or consumer sees it."""
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while time.monotonic() < deadline:
            known = self.admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
            if all((topic in known) == present for topic in topics):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the broker did not show topics {list(topics)} as {'created' if present else 'deleted'}")

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        check_name("topic", topic)
        headers = check_headers(headers)
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)
        self.producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def flush(self, timeout_s: float = 30.0) -> None:
        left = self.producer.flush(timeout_s)
        failures, self._failures = self._failures, []
        if failures:
            raise DeliveryError(f"{len(failures)} record(s) not delivered; first: {failures[0]}")
        if left:
            raise DeliveryError(f"{left} record(s) still not delivered after {timeout_s:g} s")

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = True) -> KafkaConsumer:
        config = {
            # A consumer killed without leaving holds its partitions until its session times out (librdkafka's
            # default: 45 s); heartbeats come from a background thread, so a long batch does not end a session.
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            **self.config,
            "group.id": check_name("group", group),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
        return KafkaConsumer(config, [check_name("topic", t) for t in topics])

    def close(self) -> None:
        self.flush()


class KafkaConsumer:
    """One member of a Kafka consumer group."""

    def __init__(self, config: dict, topics: list[str]) -> None:
        self._consumer = Consumer(config)
        self._consumer.subscribe(topics)

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        # poll() returns as soon as one record is there; consume(timeout=0) then takes what else is ready.
        first = self._consumer.poll(timeout_s)
        if first is None:
            return []
        messages = [first] + (self._consumer.consume(max_records - 1, timeout=0) if max_records > 1 else [])
        return [self._record(m) for m in messages if not self._is_error(m)]

    @staticmethod
    def _is_error(message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        # Others (a broker down for a while, a subscribed topic not created yet) the client recovers from.
        log.warning("kafka consumer: %s", error)
        return True

    @staticmethod
    def _record(message) -> Record:
        return Record(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            value=message.value() or b"",
            headers=list(message.headers() or []),
            timestamp_ms=message.timestamp()[1],
        )

    def commit(self, records: Sequence[Record]) -> None:
        committed = offsets_to_commit(records)
        if committed:  # commit() with no offsets would commit every current position instead
            offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in committed.items()]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()
