"""Apache Kafka 4.x, one node in KRaft mode (broker and controller in one process), with the platform's topics.

The jars come from Maven Central (``infra/local/kafka/pom.xml``); the storage is formatted once, with a cluster id
kept in ``<stack_dir>/kafka/cluster-id``. Once healthy, every topic of :func:`smartcity.events.platform_topics`
(streams, derived topics, dead letters) exists, made with ``settings.topic_partitions`` partitions (the one place that says how many).
With ``SMARTCITY_STACK_TLS`` the clients' listener (and the broker's own traffic) is SSL instead of PLAINTEXT, from
the project CA's PKCS#12 keystore; the KRaft controller listener stays plain on 127.0.0.1.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from smartcity.events import platform_topics
from smartcity.stack.base import HOST, PROBE_TIMEOUT_S, StackError, port_open
from smartcity.stack.java import JavaService
from smartcity.stack.tls import ensure_tls, tls_files


def _quiet_logger() -> logging.Logger:
    """librdkafka logs every refused connection while the broker starts; those are expected, so hold them back."""
    logger = logging.getLogger("smartcity.stack.kafka.client")
    logger.setLevel(logging.CRITICAL)
    return logger


class KafkaService(JavaService):
    name = "kafka"
    port_settings = ("kafka_port", "kafka_controller_port")
    maven_project = "kafka"
    main_jar_prefix = "kafka_2.13-"
    max_heap = "768m"
    startup_timeout_s = 90.0

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log_properties(self) -> dict[str, str | Path]:
        """The JVM properties that point Kafka's tools and server at the project's log4j2 configuration."""
        return {"log4j2.configurationFile": self.config_dir / "log4j2.properties"}

    @property
    def listener(self) -> str:
        """The security protocol, and the name, of the clients' listener."""
        return "SSL" if self.settings.stack_tls else "PLAINTEXT"

    def tls_properties(self) -> dict[str, str]:
        """The broker's SSL keystore and truststore (the CA), when the stack runs with TLS."""
        if not self.settings.stack_tls:
            return {}
        files = tls_files(self.settings.stack_dir)
        return {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(files.keystore),
            "ssl.keystore.password": files.keystore_password(),
            "ssl.key.password": files.keystore_password(),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(files.ca_cert),
            "ssl.client.auth": "none",
        }

    def client_config(self) -> dict[str, str]:
        """librdkafka's settings to reach this broker (SSL, verifying its certificate and host, when TLS is on)."""
        if not self.settings.stack_tls:
            return {"bootstrap.servers": self.address}
        return {"bootstrap.servers": self.address, "security.protocol": "SSL",
                "ssl.ca.location": str(tls_files(self.settings.stack_dir).ca_cert),
                "ssl.endpoint.identification.algorithm": "https"}

    def server_properties(self) -> str:
        controller = f"{HOST}:{self.settings.kafka_controller_port}"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": f"{self.listener}://{self.address},CONTROLLER://{controller}",
            "advertised.listeners": f"{self.listener}://{self.address}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": self.listener,
            "listener.security.protocol.map": f"{self.listener}:{self.listener},CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.settings.topic_partitions),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            **self.tls_properties(),
        }
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def prepare(self) -> None:
        if self.settings.stack_tls:
            ensure_tls(self.settings.stack_dir)
        self.properties_file.touch(mode=0o600)  # holds the keystore's password when TLS is on
        self.properties_file.write_text(self.server_properties())
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id_file = self.dir / "cluster-id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(new_cluster_id())
        format_storage = self.java_command(
            "kafka.tools.StorageTool",
            # "=": an id written before new_cluster_id avoided a leading "-" would read as an option
            "format", "--ignore-formatted", f"--cluster-id={cluster_id_file.read_text().strip()}",
            "--config", str(self.properties_file),
            properties=self.log_properties,
        )  # fmt: skip
        result = subprocess.run(format_storage, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(self.name, f"formatting the storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def command(self) -> list[str]:
        return self.java_command("kafka.Kafka", str(self.properties_file), properties=self.log_properties)

    def _admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config(), logger=_quiet_logger())

    def probe(self) -> bool:
        if not port_open(self.port):
            return False
        return bool(self._admin().list_topics(timeout=PROBE_TIMEOUT_S).brokers)

    def after_start(self) -> None:
        options = "&".join(f"{key}={value}" for key, value in self.client_config().items() if key != "bootstrap.servers")
        create_platform_topics(f"kafka://{self.address}" + (f"?{options}" if options else ""), self.settings.topic_partitions)


def create_platform_topics(bus_url: str, partitions: int) -> None:
    """Create the stream topics, the derived topics and the dead-letter topic that are missing, with ``partitions`` partitions each
    (topics that exist are left as they are)."""
    from smartcity.backends.bus import open_bus

    bus = open_bus(bus_url)
    try:
        bus.create_topics(list(platform_topics()), partitions)
    finally:
        bus.close()


def new_cluster_id() -> str:
    """A random cluster id as Kafka's own ``Uuid.randomUuid`` makes them: URL-safe base64 of 16 bytes, never
    starting with ``-`` (one in 64 would, and the storage tool would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
