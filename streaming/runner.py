"""How a job runs: its context (session, bus source, sinks, checkpoints), its query, and the progress listener.

A :class:`Job` is a name, the topics it reads, an output mode, a ``build`` function giving its streaming
DataFrame and a ``write`` function that ``foreachBatch`` calls with each micro-batch. :func:`start` starts it
with a checkpoint at ``<checkpoint_dir>/<job name>``: offsets and window state are saved there each micro-batch,
so a restarted job resumes after the last committed batch and replays the one in flight, which the idempotent
sinks write again unchanged (``<job name>.v<N>`` once the job's state changed, see :attr:`Job.state_version`; the
checkpoints of its former versions are removed as it starts).

:class:`ProgressListener` turns each finished micro-batch into metrics (processing lag, duplicates, watermark,
duration) and keeps every job's watermark in a :class:`Watermarks` file, which the late-event audit reads.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from smartcity.backends.bus import EventBus
from smartcity.backends.database import Database
from smartcity.settings import DEAD_LETTER_TOPIC
from streaming import metrics
from streaming.sources import EVENT_KEY, BusSource

WINDOW_S = 300
DROPPED_DUPLICATES = "numDroppedDuplicateRows"  # a deduplication's count in a micro-batch's state operators
INPUT_METRICS = "input"  # suffix of the observation each job makes of its input
AWAIT_POLL_S = 0.5
# The most characters of a failed micro-batch's error that reach the JVM. Spark tells an interruption from a
# failure by matching the py4j error's message with StreamExecution.PROXY_ERROR, whose `(.|\r\n|\r|\n)*` recurses
# once per character after "Py4JJavaError: An error occurred while calling": in a thread of the JVM's default
# stack, 1,400 characters overflow it (a Python traceback quoting a Java one holds tens of thousands).
BATCH_ERROR_CHARS = 480
BATCH_ERROR_LINE_CHARS = 200
_STACK_FRAME = re.compile(r"^\s*(at |\.\.\. \d+ more|JVM stacktrace:)")
_CANCELLED = re.compile(r"cancelled|InterruptedException|InterruptedIOException|ClosedByInterruptException")
log = logging.getLogger(__name__)


class Watermarks:
    """The last watermark of each job (a UTC datetime), kept in ``<checkpoint_dir>/<job>.watermark``."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.checkpoint_dir = checkpoint_dir
        self._lock = threading.Lock()

    def _path(self, job: str) -> Path:
        return self.checkpoint_dir / f"{job}.watermark"

    def get(self, job: str) -> datetime | None:
        try:
            return datetime.fromisoformat(json.loads(self._path(job).read_text())["watermark"])
        except FileNotFoundError:
            return None

    def forget(self, job: str) -> None:
        """Remove ``job``'s watermark (a job that starts without a checkpoint starts from none)."""
        with self._lock:
            self._path(job).unlink(missing_ok=True)

    def advance(self, job: str, watermark: datetime) -> None:
        """Record ``watermark`` if it is later than the one recorded (watermarks never go back)."""
        with self._lock:
            current = self.get(job)
            if current is None or watermark > current:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                temporary = self._path(job).with_suffix(".tmp")
                temporary.write_text(json.dumps({"watermark": watermark.isoformat()}))
                temporary.replace(self._path(job))


@dataclass
class StreamingContext:
    """What every job needs: the session, where records come from, where results go, and the timing rules."""

    spark: SparkSession
    source: BusSource
    database: Database
    bus: EventBus
    checkpoint_dir: Path
    watermark_s: int
    # None runs each query until the records there now are processed (Spark's availableNow), then stops.
    trigger_s: float | None = None
    watermarks: Watermarks = field(init=False)

    def __post_init__(self) -> None:
        self.watermarks = Watermarks(self.checkpoint_dir)

    def topic(self, name: str) -> str:
        """The bus topic of stream ``name`` (with the source's topic prefix)."""
        return self.source.topic_prefix + name

    @property
    def dead_letter_topic(self) -> str:
        return self.topic(DEAD_LETTER_TOPIC)


BatchWriter = Callable[[StreamingContext, DataFrame, int], None]


@dataclass(frozen=True)
class Job:
    name: str
    topics: tuple[str, ...]
    output_mode: str
    build: Callable[[StreamingContext], DataFrame]
    write: BatchWriter
    description: str = ""
    # Bumped when the job's state changes (its stateful operators, their keys or values): Spark cannot resume a
    # checkpoint of the former state, so the job starts a new one, re-reads the bus from its earliest records and
    # upserts the same windows again.
    state_version: int = 1

    @property
    def checkpoint(self) -> str:
        """The job's checkpoint folder in the context's: its name, plus ``.v<N>`` from state version 2 on."""
        return self.name if self.state_version == 1 else f"{self.name}.v{self.state_version}"

    def superseded_checkpoints(self, checkpoint_dir: Path) -> list[Path]:
        """The job's checkpoints of its former state versions in ``checkpoint_dir``: Spark cannot resume them."""
        former = [replace(self, state_version=v).checkpoint for v in range(1, self.state_version)]
        return [checkpoint_dir / name for name in former if (checkpoint_dir / name).is_dir()]


def observe_input(events: DataFrame, job: str, event_time: str = "event_time") -> DataFrame:
    """Observe each micro-batch's event count and event-time quantiles, for the processing-lag metric."""
    return events.observe(
        f"{job}_{INPUT_METRICS}",
        F.count(F.lit(1)).alias("events"),
        F.percentile_approx(F.unix_micros(event_time), list(metrics.LAG_QUANTILES), 10000).alias("quantiles"),
    )


def window_end_of(event_time: str = "event_time") -> Column:
    """The end of the 5-minute tumbling window of an event time (windows start at whole 5 minutes, UTC)."""
    return F.timestamp_seconds((F.floor(F.unix_seconds(event_time) / WINDOW_S) + 1) * WINDOW_S)


def window_start_of(window_end: str = "window_end") -> Column:
    """The start of the 5-minute window ending at ``window_end``."""
    return F.col(window_end) - F.make_dt_interval(secs=F.lit(WINDOW_S))


def counted_once(events: DataFrame, watermark_s: int) -> DataFrame:
    """``events`` (columns ``event_time`` and :data:`~streaming.sources.EVENT_KEY`, see
    :func:`streaming.sources.event_key`) with the end of their window, ``window_end``, watermarked, and each
    event once: the rows of a job's windows.

    The one watermark is on ``window_end``, ``watermark_s`` + 5 minutes behind the newest one seen, i.e.
    ``floor5(newest event time) - watermark_s``: never later than the former ``newest - watermark_s`` on the
    event time, so a window stays open at least as long as it did. Spark drops an event whose ``window_end`` is at
    or before the watermark (its window is closed: the audit counts those), and keeps each (event, window end) in
    the deduplication's state until then: a copy of an event (same CloudEvent source and id, e.g. a retried POST
    or a producer retry), in the same micro-batch or a later one, is left out. The aggregations group by
    ``window_end`` (a watermarked column, so their state is evicted as windows close).
    """
    return (events.withColumn("window_end", window_end_of())
            .withWatermark("window_end", f"{watermark_s + WINDOW_S} seconds")
            .dropDuplicates([*EVENT_KEY, "window_end"]))


class BatchWriteFailed(Exception):
    """A micro-batch's writer failed; the message is the error's summary (:func:`summarized`)."""


def summarized(error: BaseException) -> str:
    """``<module.Class>: <message>`` of ``error`` without stack frames, at most :data:`BATCH_ERROR_CHARS` long.

    The exception lines of a Java error are kept (``: org.apache.spark.SparkException: ...``, ``Caused by: ...``),
    each cut at :data:`BATCH_ERROR_LINE_CHARS`, so Spark still recognizes a cancelled or interrupted batch; when
    they are too many, the first two (the error) and the last ones (its root cause) are kept.
    """
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - a py4j error asks the JVM for its text, which may be gone at shutdown
        message = "(its message could not be read)"
    text = f"{type(error).__module__}.{type(error).__qualname__}: {message}"
    lines = [line[:BATCH_ERROR_LINE_CHARS] for line in text.splitlines()
             if line.strip() and not _STACK_FRAME.match(line)]
    first, last = lines[:2], []
    budget = BATCH_ERROR_CHARS - sum(len(line) + 1 for line in first)
    for line in reversed(lines[2:]):
        budget -= len(line) + 1
        if budget < 0:
            break
        last.insert(0, line)
    return "\n".join(first + last)


def _reporting(job: Job, writer: BatchWriter) -> BatchWriter:
    """``writer``, whose failure reaches Spark as a :class:`BatchWriteFailed` of its summary, logged here in full
    unless it is the cancellation of a stopping query."""

    def write(ctx: StreamingContext, batch: DataFrame, batch_id: int) -> None:
        try:
            writer(ctx, batch, batch_id)
        except Exception as error:
            summary = summarized(error)
            cancelled = _CANCELLED.search(summary) is not None
            log.log(logging.DEBUG if cancelled else logging.ERROR, "job %s: micro-batch %d failed", job.name,
                    batch_id, exc_info=not cancelled)
            raise BatchWriteFailed(summary) from None

    return write


def start(ctx: StreamingContext, job: Job, write: BatchWriter | None = None) -> StreamingQuery:
    """Start ``job``'s query, writing each micro-batch with ``write`` (the job's own by default).

    A failed write reaches Spark as a short :class:`BatchWriteFailed` (see :data:`BATCH_ERROR_CHARS`)."""
    writer = _reporting(job, write or job.write)
    if not (ctx.checkpoint_dir / job.checkpoint).exists():
        ctx.watermarks.forget(job.name)  # a job starting over has no watermark yet: the one recorded is another state's
    for former in job.superseded_checkpoints(ctx.checkpoint_dir):  # their state stores' files would stay forever
        shutil.rmtree(former, ignore_errors=True)
        log.info("job %s: removed the checkpoint of its former state, %s", job.name, former)
    stream = (
        job.build(ctx).writeStream.queryName(job.name).outputMode(job.output_mode)
        .option("checkpointLocation", str(ctx.checkpoint_dir / job.checkpoint))
        .foreachBatch(lambda batch, batch_id: writer(ctx, batch, batch_id))
    )
    stream = stream.trigger(availableNow=True) if ctx.trigger_s is None else stream.trigger(
        processingTime=f"{ctx.trigger_s} seconds")
    return stream.start()


def await_all(queries: Sequence[StreamingQuery], timeout_s: float | None = None) -> None:
    """Wait until every query has stopped (or ``timeout_s``); the first failure stops the others and is raised.

    The queries are polled from Python, a short sleep apart, instead of blocking in the JVM's awaitTermination:
    Ctrl-C then interrupts a sleep, not a py4j call (which breaks its connection, and py4j logs it as errors).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            for query in queries:
                if not query.isActive and (error := query.exception()) is not None:
                    raise error
            if not any(query.isActive for query in queries) or (deadline is not None and time.monotonic() > deadline):
                return
            time.sleep(AWAIT_POLL_S)
    except Exception:
        for query in queries:
            if query.isActive:
                query.stop()
        raise


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


class ProgressListener(StreamingQueryListener):
    """Metrics from each finished micro-batch: lag from the job's input observation, duplicates left out,
    watermark, duration."""

    def __init__(self, watermarks_of: Callable[[], Watermarks | None]) -> None:
        self.watermarks_of = watermarks_of
        self.lags: dict[str, list[tuple[int, list[float]]]] = {}  # per job: (events, lags per quantile)

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        job = progress.name
        if not job:
            return
        done_at = _parse_time(progress.timestamp).timestamp() + progress.batchDuration / 1000
        metrics.BATCH_DURATION.labels(job).set(progress.batchDuration / 1000)
        observed = progress.observedMetrics.get(f"{job}_{INPUT_METRICS}")
        if observed is not None and observed["events"] and observed["quantiles"]:
            quantiles = [micros / 1_000_000 for micros in observed["quantiles"]]
            lags = metrics.record_batch_lag(job, observed["events"], done_at, quantiles)
            self.lags.setdefault(job, []).append((observed["events"], lags))
        duplicates = sum(operator.customMetrics.get(DROPPED_DUPLICATES, 0) for operator in progress.stateOperators)
        if duplicates:
            metrics.DUPLICATES.labels(job).inc(duplicates)
        watermark = (progress.eventTime or {}).get("watermark")
        if watermark:
            moment = _parse_time(watermark)
            if moment.timestamp() > 0:
                metrics.WATERMARK.labels(job).set(moment.timestamp())
                watermarks = self.watermarks_of()
                if watermarks is not None:
                    watermarks.advance(job, moment)


_listeners: dict[int, ProgressListener] = {}
_current: dict[str, StreamingContext] = {}


def listen(ctx: StreamingContext) -> ProgressListener:
    """Register the progress listener of ``ctx.spark`` (once per session); it reports to ``ctx`` from now on."""
    _current["ctx"] = ctx
    key = id(ctx.spark)
    if key not in _listeners:
        _listeners[key] = ProgressListener(lambda: _current["ctx"].watermarks if "ctx" in _current else None)
        ctx.spark.streams.addListener(_listeners[key])
    return _listeners[key]
