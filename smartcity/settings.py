"""The platform's settings: read from the environment in this one place.

Every setting is an environment variable with the prefix ``SMARTCITY_`` (``SMARTCITY_BUS_URL`` ...), optionally
from a ``.env`` file named by ``SMARTCITY_ENV_FILE``. The environment wins over the file; a CLI flag, where one
exists, wins over both. Secrets are never environment variables: they are files in ``secrets_dir`` (the OpenFaaS
convention ``/var/openfaas/secrets/<name>``), read by :func:`read_secret`.

Every backend is chosen by the scheme of its URL; the defaults are the embedded stand-ins, so the demo runs with
no server at all.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartcity.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "var" / "data"

# The streams' topics are the stream registry's (smartcity.streams._registry, read as smartcity.events.TOPICS and
# STREAMS); these are the platform's other topics.
DEAD_LETTER_TOPIC = "dead-letter"
# What the platform derives and publishes for its own functions (smartcity.events.derived).
DERIVED_TOPICS = ("traffic-windows", "forecasts", "hotspots")


class Settings(BaseSettings):
    """All the platform's settings. Frozen: read once, passed around."""

    model_config = SettingsConfigDict(env_prefix="SMARTCITY_", frozen=True, extra="ignore")

    bus_url: str = Field(
        default=f"file://{DEFAULT_DATA_DIR / 'bus'}",
        description="Event bus: kafka://host:port[,host:port] or file:///folder (embedded append-only log).",
    )
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'smartcity.db'}",
        description="Relational and time-series store: postgresql://user@host:port/db or sqlite:///path.",
    )
    documents_url: str = Field(
        default=f"embedded:///{DEFAULT_DATA_DIR / 'documents.db'}",
        description="Document store: mongodb://host:port/db or embedded:///path (SQLite-backed documents).",
    )
    cache_url: str = Field(
        default="memory://",
        description="Latest state and cache: redis://host:port/db or memory:// (in-process).",
    )
    objects_url: str = Field(
        default=f"file://{DEFAULT_DATA_DIR / 'objects'}",
        description="Object store: s3://host:port/bucket (MinIO API, minio client) or file:///folder.",
    )
    secrets_dir: Path = Field(
        default=Path("/var/openfaas/secrets"),
        description="Folder of secret files, one file per secret (OpenFaaS convention).",
    )
    topic_partitions: int = Field(default=3, ge=1, description="Partitions of every stream topic.")
    city_file: Path = Field(
        default=PROJECT_ROOT / "smartcity" / "city" / "data" / "cologne-nippes.json",
        description="The city the platform serves (`smartcity city build` makes one): its time zone, boundary, zones, "
        "road segments, sites and transit feed. Default: the bundled Cologne district.",
    )
    streams_dir: Path | None = Field(
        default=None,
        description="A folder of the city's own stream descriptors (`*.py` files, each a `STREAM = Stream(...)`, "
        "see docs/adding-a-sensor-type.md), registered beside the platform's eight; empty: none.",
    )
    stack_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "stack",
        description="Where `smartcity stack` keeps the local services' data, logs and pid files.",
    )
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "smartcity",
        description="Downloaded and built service binaries, kept between runs.",
    )
    gateway_port: int = Field(default=8080, description="Port of the local function gateway.")
    gateway_internal_port: int = Field(
        default=8081, ge=0,
        description="Port of the gateway's internal listener, which serves /healthz and /metrics and nothing else (for "
        "probes and Prometheus; the public port then answers 404 for both). 0: they are served on the public port.")
    internal_host: str = Field(
        default="127.0.0.1",
        description="Address the internal endpoints listen on: the gateway's internal port, the triggers' and the "
        "streaming jobs' /metrics. 0.0.0.0 in a container, so the kubelet and Prometheus reach them: what keeps them "
        "internal there is their port, which no Service, route or published port exposes.")
    gateway_workers: int = Field(
        default=0, ge=0,
        description="Processes of the local function gateway (each loads every function); 0: one per CPU it may run on.")
    gateway_access_log: bool = Field(
        default=True, description="A log line per request to the local gateway (uvicorn's access log; about 50 us "
        "of each request's time). Off, requests are still counted in its /metrics and errors still logged.")
    gateway_functions: str = Field(
        default="", description="Comma-separated functions the local gateway serves; empty: all of the stack file.")
    gateway_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0,
        description="Largest request body the local gateway passes to a function; a larger one gets 413.")
    callback_allowed_hosts: str = Field(
        default="",
        description="Comma-separated hosts (`name`, `name:port`, `[v6]:port`) that `/async-function` may POST its "
        "result to (`X-Callback-Url`); empty: none. Every address the host resolves to must also be public.",
    )
    callback_allow_private: bool = Field(
        default=False,
        description="Let callbacks reach allowlisted hosts at loopback or private (RFC 1918, fc00::/7) addresses: "
        "for a local setup. Link-local, metadata, unspecified and multicast addresses stay refused.",
    )
    gateway_rate_per_s: float = Field(
        default=200.0, ge=0,
        description="Requests per second each caller (one token, API key or, without credentials, one client address) "
        "may send through the gateway, as a token bucket; over it: 429 with Retry-After. 0: no limit.")
    gateway_rate_burst: int = Field(
        default=400, ge=1, description="Requests a caller may send at once before `gateway_rate_per_s` applies.")
    gateway_trusted_proxies: str = Field(
        default="",
        description="Comma-separated CIDRs of the load balancers or ingress in front of the gateway; empty: none. Only "
        "from a peer inside them is a caller's address (its rate-limit bucket) read from X-Forwarded-For (the "
        "right-most hop not itself a trusted proxy) or Forwarded: for=; from any other peer those headers are ignored.")
    gateway_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest a function may take to start answering through the gateway; then 504.")
    gateway_drain_delay_s: float = Field(
        default=0.0, ge=0,
        description="After SIGTERM, how long the gateway still serves new requests while /healthz answers 503 (so load "
        "balancers stop sending) before it stops listening; 0 where a preStop hook already waits (Kubernetes).")
    gateway_drain_timeout_s: float = Field(
        default=25.0, gt=0,
        description="After SIGTERM (and the drain delay), how long in-flight requests may take to finish before the "
        "gateway cancels them and exits; keep terminationGracePeriodSeconds above preStop + delay + this.")
    ingest_allow_anonymous: bool = Field(
        default=False,
        description="Let ingest functions take readings without an API key or token: for local development only "
        "(refused in production mode).")
    encrypt_at_rest: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Envelope AES-256-GCM of raw archives, backups and model artifacts with the keys of the secret "
        "`encryption-keyring` (docs/security.md): `auto` when that secret exists, `on` (refuse to run without it) "
        "or `off` (write plaintext; encrypted objects are still read).")
    mode: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start with demo or default secrets (a JWT key or ingest key list that "
        "is missing, empty or made by `smartcity demo`) or with anonymous ingest.")
    stack_file: Path = Field(
        default=PROJECT_ROOT / "stack.yml", description="The OpenFaaS stack file listing every function and its trigger."
    )
    function_base_image: str = Field(
        default="local",
        description="Base image of `smartcity functions build`: `local` (a Debian bookworm base made by mmdebstrap, "
                    "cached) or an image with Python 3.11 and pip, e.g. docker.io/library/python:3.11-slim-bookworm.",
    )
    function_watchdog_image: str = Field(
        default="",
        description="Image holding /fwatchdog (OpenFaaS of-watchdog) for `smartcity functions build`; empty: none "
                    "with the local base (the image serves the function itself), ghcr.io/openfaas/of-watchdog otherwise.",
    )
    function_name: str | None = Field(
        default=None, description="The one function a function container serves (set in its image by the template)."
    )
    trigger_metrics_port: int = Field(
        default=9102, ge=0, description="Port of `smartcity functions trigger`'s /metrics endpoint (0: none)."
    )
    dedup_ttl_s: int = Field(
        default=86400, ge=1, description="Seconds a handled event's (source, id) is remembered, so a redelivery is skipped."
    )
    knative_namespace: str = Field(default="smartcity", description="Namespace of the generated Knative manifests.")
    knative_kafka_bootstrap_servers: str = Field(
        default="my-cluster-kafka-bootstrap.kafka:9092",
        description="Kafka bootstrap servers written into the generated KafkaSources and KafkaSinks (comma-separated).",
    )
    kafka_port: int = Field(default=9092, description="Port of the local Kafka broker (`smartcity stack`).")
    kafka_controller_port: int = Field(default=9093, description="Port of the local Kafka's KRaft controller.")
    postgres_port: int = Field(default=5432, description="Port of the local PostgreSQL server (`smartcity stack`).")
    redis_port: int = Field(default=6379, description="Port of the local Redis server (`smartcity stack`).")
    ferretdb_port: int = Field(default=27017, description="Port of the local FerretDB, MongoDB wire protocol.")
    s3_port: int = Field(default=9000, description="Port of the local S3-compatible server (`smartcity stack`).")
    stack_tls: bool = Field(
        default=False,
        description="`smartcity stack up` starts Kafka, PostgreSQL, Redis, FerretDB, S3 and the gateway with TLS, from "
        "the project CA in `<stack_dir>/tls/` (made once); `smartcity stack env` then gives TLS URLs.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) the clients verify servers' certificates against, host name included, when a "
        "backend URL asks for TLS (Kafka `?security.protocol=SSL`, `rediss://`, PostgreSQL `?sslmode=verify-full`, "
        "MongoDB `?tls=true`, S3 `?secure=true`); empty: the system's CAs.",
    )
    prometheus_port: int = Field(default=9090, description="Port of the local Prometheus (`smartcity stack`).")
    streaming_metrics_port: int = Field(
        default=9108, description="Port of the streaming jobs' /metrics endpoint, scraped by Prometheus."
    )
    streaming_checkpoint_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "streaming" / "checkpoints",
        description="Checkpoints of the Spark streaming jobs (offsets and window state; a restart resumes there).",
    )
    streaming_trigger_s: float = Field(
        default=1.0, gt=0, description="Seconds between the micro-batches of each Spark streaming job (a busy job "
        "runs them back to back; an event waits up to this long before its batch starts, so it bounds lag from below)."
    )
    streaming_watermark_s: int = Field(
        default=120, ge=0, description="How late (event time) an event may arrive and still count in its 5-min window."
    )
    spark_master: str = Field(default="local[2]", description="Spark master of `smartcity streaming run`.")
    prometheus_url: str | None = Field(
        default=None, description="Prometheus HTTP API the platform may query, e.g. http://127.0.0.1:9090."
    )
    log_level: str = Field(default="INFO", description="Log level of every process.")
    logs_url: str = Field(
        default="",
        description="Elasticsearch bulk API the processes ship their log lines to (`<url>/_bulk`, NDJSON): the local "
        "VictoriaLogs at http://127.0.0.1:9428/insert/elasticsearch, or an Elasticsearch/OpenSearch URL; empty: "
        "logs go to stderr only.",
    )
    logs_spool_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "log-spool",
        description="Where log lines wait until the log store has them (kept while it is down).",
    )
    logs_spool_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024,
        description="Most bytes of log lines kept waiting; beyond it the oldest batches are dropped (and counted).",
    )
    victorialogs_port: int = Field(default=9428, description="Port of the local VictoriaLogs (`smartcity stack`).")
    gps_precision_decimals: int = Field(
        default=3,
        ge=0,
        le=7,
        description="Decimals kept of personal GPS coordinates at ingest (3 is about 110 m, 2 about 1.1 km).",
    )
    latest_state_ttl_s: int = Field(
        default=900, ge=1, description="Seconds a latest state (per sensor, vehicle, station, parking) lives in the cache."
    )
    partitions_days_ahead: int = Field(
        default=7, ge=0, description="Daily partitions of the time-series tables created ahead of today."
    )
    backup_keep: int = Field(default=7, ge=1, description="Backups kept by `smartcity backup prune` (the newest ones).")
    backup_keep_days: float = Field(
        default=0.0, ge=0, description="`smartcity backup prune`: also delete backups older than this many days (0: no "
                                       "age limit); the newest backup is always kept.")
    backup_url: str = Field(
        default=f"file://{DEFAULT_DATA_DIR / 'backups'}",
        description="Where backups go, apart from the data: s3://host:port/bucket (a bucket of its own, versioned "
                    "where the server can) or file:///folder.")
    backup_every: str = Field(
        default="1d", description="`smartcity backup schedule`: wall time between backups, e.g. 6h, 1d.")
    database_read_url: str = Field(
        default="", description="Database of the API's read-only queries, e.g. a streaming replica "
                                "postgresql://user@host:port/db; empty: SMARTCITY_DATABASE_URL.")
    postgres_replica_port: int = Field(
        default=5433, description="Port of the local PostgreSQL streaming replica (`smartcity stack up "
                                  "postgres-replica`; not started by default).")
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of every topic the platform creates (1 with one broker; 3 in "
                                     "production).")
    forecast_reload_s: float = Field(
        default=30.0, ge=0, description="forecast-traffic: seconds between checks of the registry for a newly promoted "
                                        "model (0: before every batch).")
    anomaly_threshold: float = Field(  # models.anomaly.base.ALERT_THRESHOLD (not imported: it needs pandas)
        default=0.999, gt=0, le=1, description="detect-anomalies: the calibrated score (0..1) from which a window is "
                                              "published as an anomaly on the incidents topic.")
    anomaly_reload_s: float = Field(
        default=30.0, ge=0, description="detect-anomalies: seconds between checks of the registry for a newly promoted "
                                        "detector (0: before every batch).")
    hotspot_interval_s: float = Field(
        default=60.0, ge=0, description="cluster-hotspots: least seconds between two clusterings of the last hour's "
                                        "anomalies and active incidents (0: after every batch).")
    hotspot_radius_m: float = Field(
        default=400.0, gt=0, description="cluster-hotspots: metres within which two anomalies or incidents are "
                                         "neighbours (haversine; DBSCAN's eps).")
    hotspot_window_s: float = Field(
        default=1800.0, gt=0, description="cluster-hotspots: seconds within which two anomalies or incidents are "
                                          "neighbours (with the radius: close in space and in time).")
    hotspot_min_points: int = Field(
        default=3, ge=1, description="cluster-hotspots: anomalies and incidents a hotspot needs around one of them "
                                     "(itself included; DBSCAN's min_samples).")
    demo_history_days: float = Field(
        default=28.0, ge=0, description="`smartcity demo`: days of simulated traffic history before its start that it "
                                        "makes sure are stored (generating what is missing), for the forecasting "
                                        "models to learn from (0: none).")
    demo_training_models: str = Field(
        default="xgboost", description="`smartcity demo`: forecasting models it trains on a schedule: xgboost, lstm, "
                                       "transformer (comma-separated), all, or none.")
    demo_training_every: str = Field(
        default="6h", description="`smartcity demo`: wall time between training runs, e.g. 90m, 6h (the first runs "
                                  "as soon as enough history is stored).")
    simulator_speed: float = Field(
        default=1.0, ge=0, description="`smartcity simulate`: city seconds per wall second (0: as fast as possible).")
    simulator_sensors: int | None = Field(
        default=None, ge=1, description="`smartcity simulate`: traffic sensors (default one per lane; more: scale-out).")
    simulator_rate_cap: float | None = Field(
        default=None, gt=0, description="`smartcity simulate`: most events published per wall second (none: no cap).")
    simulator_seed: int = Field(default=1, description="`smartcity simulate`: random seed; same seed and start, same events.")
    simulator_start: datetime | None = Field(
        default=None, description="`smartcity simulate`: city time to start at, ISO 8601 with a timezone (default: now).")
    simulator_duration: str | None = Field(
        default=None, description="`smartcity simulate`: city time to run, e.g. 300s, 90m, 2h (default: until stopped).")
    simulator_sink: str = Field(default="bus", description="`smartcity simulate`: where events go, bus or http.")
    simulator_url: str | None = Field(
        default=None, description="`smartcity simulate --sink http`: URL, {topic} is replaced "
                                  "(default: the local gateway's /function/ingest-{topic}).")
    simulator_format: str = Field(default="json", description="`smartcity simulate --sink http`: body format, json or csv.")
    simulator_streams: str | None = Field(
        default=None, description="`smartcity simulate`: comma-separated topics to publish (default: all eight).")
    simulator_incidents: str | None = Field(
        default=None, description="`smartcity simulate`: incidents to inject, `;`-separated "
                                  "kind=accident|closure,at=HH:MM|+10m,minutes=20,lane=<SUMO lane>.")
    simulator_incidents_per_day: float = Field(
        default=4.0, ge=0, description="`smartcity simulate`: random incidents per day of city time.")
    simulator_gtfs: Path | None = Field(
        default=None, description="`smartcity simulate`: GTFS zip the buses run (default: the simulated city's feed).")
    simulator_record: Path | None = Field(
        default=None, description="`smartcity simulate`: also write every event to this JSON-lines file.")
    simulator_replay: Path | None = Field(
        default=None, description="`smartcity simulate`: publish a recording instead of simulating.")
    connector_gateway_url: str | None = Field(
        default=None, description="`smartcity connect`: gateway whose ingest functions take the readings "
                                  "(<url>/function/ingest-<topic>, or a URL where {topic} is replaced; default: the local gateway).")
    connector_interval_s: float = Field(default=30.0, gt=0, description="`smartcity connect`: seconds between polls.")
    connector_backoff_max_s: float = Field(
        default=300.0, gt=0, description="`smartcity connect`: longest wait after failed polls (exponential backoff "
                                         "from 1 s, with jitter).")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment (and ``SMARTCITY_ENV_FILE`` if set)."""
    env_file = os.environ.get("SMARTCITY_ENV_FILE")
    if env_file and not Path(env_file).is_file():
        raise ConfigurationError("SMARTCITY_ENV_FILE", f"file {env_file} does not exist")
    return Settings(_env_file=env_file) if env_file else Settings()


def read_secret(name: str, settings: Settings | None = None) -> SecretStr:
    """Read the secret file ``<secrets_dir>/<name>``; fail fast, naming it, when it is missing."""
    settings = settings or get_settings()
    path = settings.secrets_dir / name
    try:
        return SecretStr(path.read_text().strip())
    except FileNotFoundError:
        raise ConfigurationError(
            f"secret {name}", f"file {path} is missing (set SMARTCITY_SECRETS_DIR to the folder of secret files)"
        ) from None
