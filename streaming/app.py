"""The streaming jobs by name, and how to run a set of them with the audit beside them.

``smartcity streaming run`` calls :func:`run`; tests and the benchmark build a :class:`StreamingContext` with
:func:`open_context` (their own topics and checkpoints) and call :func:`start_jobs`.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.errors import ConfigurationError
from smartcity.settings import DEAD_LETTER_TOPIC, Settings
from smartcity.storage.migrate import migrate
from streaming import anomalies, metrics, mobility_index, traffic_windows
from streaming.audit import audit_job
from streaming.runner import (BatchWriteFailed, BatchWriter, Job, StreamingContext, await_all, listen, start,
                              summarized)
from streaming.session import build_session
from streaming.sources import BusSource

JOBS: dict[str, Job] = {job.name: job for job in (traffic_windows.JOB, mobility_index.JOB, anomalies.JOB)}
OUTPUT_TOPICS = ("incidents", "traffic-windows", DEAD_LETTER_TOPIC)
log = logging.getLogger(__name__)
_WRITE_FAILED = re.compile(rf"{BatchWriteFailed.__name__}: (.+)")


def jobs_named(names: Sequence[str]) -> list[Job]:
    """The jobs called ``names`` (all of them when empty); an unknown name is an error listing the known ones."""
    unknown = [name for name in names if name not in JOBS]
    if unknown:
        raise ConfigurationError("JOB", f"unknown streaming job(s) {', '.join(unknown)}; known: {', '.join(JOBS)}")
    return [JOBS[name] for name in (names or JOBS)]


def open_context(settings: Settings, spark: SparkSession, *, trigger_s: float | None,
                 checkpoint_dir: Path | None = None, topic_prefix: str = "",
                 max_records_per_batch: int | None = None) -> StreamingContext:
    """A context on the settings' bus and database; the output topics are created if missing."""
    bus = open_bus(settings.bus_url)
    source = BusSource(settings.bus_url, max_records_per_batch=max_records_per_batch, topic_prefix=topic_prefix)
    ctx = StreamingContext(
        spark=spark, source=source, database=open_database(settings.database_url), bus=bus,
        checkpoint_dir=checkpoint_dir or settings.streaming_checkpoint_dir,
        watermark_s=settings.streaming_watermark_s, trigger_s=trigger_s,
    )
    bus.create_topics([ctx.topic(topic) for topic in OUTPUT_TOPICS], settings.topic_partitions)
    return ctx


def with_audit(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` and their audit: what :func:`start_jobs` starts, in its order."""
    return [*jobs, audit_job(jobs)]


def start_jobs(ctx: StreamingContext, jobs: Sequence[Job], writers: Mapping[str, BatchWriter] | None = None,
               audit: bool = True) -> list[StreamingQuery]:
    """Start ``jobs`` (and their audit, :func:`with_audit`); ``writers`` replaces the batch writer of the jobs it
    names."""
    listen(ctx)
    queries = []
    try:
        for job in with_audit(jobs) if audit else jobs:
            queries.append(start(ctx, job, (writers or {}).get(job.name)))
    except Exception:
        for query in queries:
            query.stop()
        raise
    return queries


@dataclass
class RestartBackoff:
    """When a failed job may start again, paced as Kubernetes paces a container that keeps failing
    (CrashLoopBackOff): at once the first time, then :attr:`first_s` after the restart before, doubling up to
    :attr:`max_s`; a job that ran :attr:`steady_s` since its last restart is paced from the start again."""

    first_s: float = 10.0
    max_s: float = 300.0
    steady_s: float = 600.0
    _restarts: dict[str, tuple[float, int]] = field(default_factory=dict)  # name: (last restart, restarts in a row)

    def due(self, name: str, now: float) -> bool:
        last, in_a_row = self._in_a_row(name, now)
        return in_a_row == 0 or now >= last + min(self.max_s, self.first_s * 2 ** (in_a_row - 1))

    def restarted(self, name: str, now: float) -> None:
        self._restarts[name] = (now, self._in_a_row(name, now)[1] + 1)

    def _in_a_row(self, name: str, now: float) -> tuple[float, int]:
        last, in_a_row = self._restarts.get(name, (now, 0))
        return (last, 0) if now - last >= self.steady_s else (last, in_a_row)


def restart_failed(ctx: StreamingContext, jobs: Sequence[Job], queries: list[StreamingQuery],
                   backoff: RestartBackoff | None = None) -> dict[str, str]:
    """Start again, from its checkpoint, each of ``jobs`` whose query in ``queries`` (the same order) stopped with an
    error, as Kubernetes starts a failed job's driver again (when ``backoff`` says it is due; at once without one);
    ``queries`` then holds the new ones. Return why each restarted job stopped, by name: its writer's error
    (``BatchWriteFailed``'s summary), else Spark's first line.

    Where a job runs inside another program (the demo), nothing else would: one failed micro-batch (a database
    that refused a write for a while) would stop that job for good. The checkpoint makes the restart lose and repeat
    nothing."""
    backoff = backoff or RestartBackoff(first_s=0.0)  # none given: every failed job is due at once
    restarted = {}
    for index, (job, query) in enumerate(zip(jobs, queries)):
        error, now = None if query.isActive else query.exception(), time.monotonic()
        if error is None or not backoff.due(job.name, now):
            continue
        written = _WRITE_FAILED.search(str(error))
        restarted[job.name] = written.group(1) if written else summarized(error).splitlines()[0]
        queries[index] = start(ctx, job)
        backoff.restarted(job.name, now)
    return restarted


def stop_jobs(spark: SparkSession, queries: Sequence[StreamingQuery]) -> None:
    """Stop the queries one after the other, each waiting for its thread to end, with Spark's and py4j's logs off.

    A micro-batch in flight is cancelled: Spark logs the cancelled jobs and the stopped executors' refusals at
    ERROR (hundreds of lines of Java stack traces), although nothing is lost (the batch is replayed from its
    checkpoint at the next start). Logs stay off: the session is being closed.
    """
    spark.sparkContext.setLogLevel("OFF")
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    for query in queries:
        if query.isActive:
            query.stop()


def close_context(ctx: StreamingContext) -> None:
    for backend in (ctx.bus, ctx.database):
        backend.close()


def run(settings: Settings, names: Sequence[str], once: bool = False,
        on_started: Callable[[list[str]], None] = lambda names: None, spark: SparkSession | None = None, *,
        topic_prefix: str = "", max_records_per_batch: int | None = None) -> None:
    """Run the jobs called ``names`` until stopped (or, ``once``, until what is on the bus is processed).

    Locally by default (:func:`build_session`); on a cluster, pass the session spark-submit made. ``topic_prefix``
    and ``max_records_per_batch`` are those of :func:`open_context` (tests run a job process on topics of their own).
    """
    jobs = jobs_named(names)
    database = open_database(settings.database_url)
    try:
        migrate(database)
    finally:
        database.close()
    metrics.serve(settings.streaming_metrics_port, settings.internal_host)
    spark = spark or build_session(settings)
    ctx = open_context(settings, spark, trigger_s=None if once else settings.streaming_trigger_s,
                       topic_prefix=topic_prefix, max_records_per_batch=max_records_per_batch)
    queries = start_jobs(ctx, jobs)
    on_started([query.name for query in queries])
    try:
        await_all(queries)
    finally:
        stop_jobs(spark, queries)
        close_context(ctx)
        spark.stop()
