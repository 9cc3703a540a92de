"""Job ``audit``: accounts for every record the aggregating jobs will not count, so none is lost silently.

It reads the same topics as the jobs it audits, statelessly, and for each micro-batch:

- sends each unusable record (unreadable, a required field missing, a foreign CloudEvent type) to the
  dead-letter topic with the reason (:func:`streaming.sinks.dead_letter`), counted in
  ``smartcity_streaming_dead_lettered_total``;
- classifies each good event against each audited job's watermark (the last one the job reported, see
  :class:`streaming.runner.Watermarks`). Spark drops, without a trace, an event whose 5-minute window ends at or
  before the watermark; the audit counts those as ``outcome="dropped"`` in
  ``smartcity_streaming_late_events_total``. An event from before the newest window the job had seen whose window
  was still open is late but counted: ``outcome="counted"``. (The jobs' watermark is on their windows' end,
  ``streaming_watermark_s`` + 5 minutes behind the newest one, see :func:`streaming.runner.counted_once`: the
  newest window starts at the watermark plus ``streaming_watermark_s``.)

The watermark a job applied to an event and the one the audit reads may differ by one micro-batch, so an event
that arrives exactly as its window closes may be classed on the wrong side; any event later than that is classed
right.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from streaming import metrics
from streaming.runner import Job, StreamingContext, window_end_of
from streaming.sinks import collect_records, dead_letter
from streaming.sources import read_events

log = logging.getLogger(__name__)


def audit_job(audited: Sequence[Job]) -> Job:
    """The audit of ``audited`` jobs, reading the union of their topics."""
    topics = tuple(sorted({topic for job in audited for topic in job.topics}))

    def build(ctx: StreamingContext) -> DataFrame:
        return read_events(ctx.spark, ctx.source, topics).select(
            "value", "headers", "topic", "partition", "offset", "event_time", "problem",
            # not F.window(): it filters out the rows without an event time, which are the ones to dead-letter
            window_end_of().alias("window_end"),
        )

    def write(ctx: StreamingContext, batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        try:
            bad = collect_records(batch.where(F.col("problem").isNotNull()).drop("event_time", "window_end"))
            if bad:
                dead_letter(ctx.bus, bad, job="audit", topic=ctx.dead_letter_topic)
                for record in bad:
                    metrics.DEAD_LETTERED.labels(record["topic"]).inc()
                log.warning("audit: %d unusable records sent to %s", len(bad), ctx.dead_letter_topic)
            for job in audited:
                watermark = ctx.watermarks.get(job.name)
                if watermark is not None:
                    count_late(batch.where(F.col("problem").isNull()), job, watermark, ctx.watermark_s)
        finally:
            batch.unpersist()

    return Job(name="audit", topics=topics, output_mode="append", build=build, write=write,
               description="Dead-letters unusable records; counts late events and those dropped by watermarks")


def count_late(events: DataFrame, job: Job, watermark: datetime, watermark_s: int) -> dict[tuple[str, str], int]:
    """Count ``job``'s late events in ``events`` by topic and outcome; add them to the metric; return them."""
    newest_window_start = watermark + timedelta(seconds=watermark_s)
    closed = F.col("window_end") <= F.lit(watermark)
    rows = events.where(F.col("topic").isin(list(job.topics))).groupBy("topic").agg(
        F.count_if(closed).alias("dropped"),
        F.count_if(~closed & (F.col("event_time") < F.lit(newest_window_start))).alias("counted"),
    ).collect()
    counts = {}
    for row in rows:
        for outcome in ("dropped", "counted"):
            if row[outcome]:
                metrics.LATE_EVENTS.labels(job.name, row["topic"], outcome).inc(row[outcome])
                counts[(row["topic"], outcome)] = row[outcome]
    if counts:
        log.info("audit of %s: late events %s (watermark %s)", job.name, counts, watermark.isoformat())
    return counts
