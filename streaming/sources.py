"""Streams of bus records as Spark DataFrames, the same columns whichever bus carries them.

``kafka://`` is read with Spark's Kafka source; the embedded ``file://`` bus with Spark's JSON file source over
its immutable segment files (``<root>/<topic>/<partition>/<offset>.jsonl``; the ``.tmp`` files being written and
the ``_meta.json``/``_groups`` bookkeeping are hidden from Spark by their leading dot or underscore).

Both give :data:`RECORD_COLUMNS`: ``value`` (the record value as text: the CloudEvent's JSON data in binary
mode), ``headers`` (map of header name to text: ``ce_id``, ``ce_type``, ``ce_time``...), ``topic``,
``partition``, ``offset`` and ``timestamp`` (the record's append time). :func:`read_events` then parses the
values with the Spark schema of each topic's pydantic model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smartcity.backends._url import local_path, query_options
from smartcity.backends.bus.kafka import bootstrap_servers
from smartcity.errors import ConfigurationError
from smartcity.events import stream_for_topic
from streaming.schemas import spark_schema

EVENT_KEY = ("event_key", "event_key_check")  # the columns of :func:`event_key`
RECORD_COLUMNS = ("value", "headers", "topic", "partition", "offset", "timestamp")
# One line of a segment file of the embedded bus (smartcity.backends.bus.filelog).
FILE_BUS_LINE = T.StructType([
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("timestamp_ms", T.LongType()),
    T.StructField("key", T.StringType()),
    T.StructField("value", T.StringType()),
    T.StructField("value_base64", T.BooleanType()),
    T.StructField("headers", T.MapType(T.StringType(), T.StringType())),
])


@dataclass(frozen=True)
class BusSource:
    """Where the records come from: the bus URL, and how much one micro-batch takes at most."""

    bus_url: str
    max_records_per_batch: int | None = None
    # Prepended to every topic name (tests and benchmarks use their own topics); the ``topic`` column drops it.
    topic_prefix: str = ""
    setting: str = "SMARTCITY_BUS_URL"

    def records(self, spark: SparkSession, topics: Sequence[str]) -> DataFrame:
        """A stream of the records of ``topics`` with :data:`RECORD_COLUMNS`, from the earliest one on."""
        scheme = urlsplit(self.bus_url).scheme
        names = [self.topic_prefix + topic for topic in topics]
        if scheme == "kafka":
            records = self._kafka_records(spark, names)
        elif scheme == "file":
            records = self._file_records(spark, names)
        else:
            raise ConfigurationError(self.setting, f"Spark reads kafka:// or file:// buses, not {self.bus_url!r}")
        if self.topic_prefix:
            records = records.withColumn("topic", F.expr(f"substring(topic, {len(self.topic_prefix) + 1})"))
        return records

    def _kafka_records(self, spark: SparkSession, topics: Sequence[str]) -> DataFrame:
        reader = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap_servers(self.bus_url, self.setting))
            .option("subscribe", ",".join(topics))
            .option("startingOffsets", "earliest")
            .option("includeHeaders", "true")
            # Records removed by retention before they were read are reported in the log, not fatal.
            .option("failOnDataLoss", "false")
        )
        for name, value in query_options(self.bus_url).items():
            reader = reader.option(f"kafka.{name}", value)
        if self.max_records_per_batch:
            reader = reader.option("maxOffsetsPerTrigger", str(self.max_records_per_batch))
        raw = reader.load()
        headers = F.map_from_entries(
            F.transform(F.coalesce("headers", F.array()), lambda h: F.struct(h["key"], h["value"].cast("string")))
        )
        return raw.select(
            F.col("value").cast("string").alias("value"), headers.alias("headers"),
            "topic", "partition", "offset", "timestamp",
        )

    def _file_records(self, spark: SparkSession, topics: Sequence[str]) -> DataFrame:
        root = local_path(self.bus_url, self.setting)
        for topic in topics:  # the file source needs its folders to exist; the bus creates them lazily
            (root / topic).mkdir(parents=True, exist_ok=True)
        pattern = f"{root}/{{{','.join(topics)}}}/[0-9]*/*.jsonl" if len(topics) > 1 else f"{root}/{topics[0]}/[0-9]*/*.jsonl"
        reader = spark.readStream.schema(FILE_BUS_LINE).option("mode", "PERMISSIVE")
        if self.max_records_per_batch:
            # Segments hold up to 1000 records each (the bus's default batch).
            reader = reader.option("maxFilesPerTrigger", str(max(1, self.max_records_per_batch // 1000)))
        raw = reader.json(pattern)
        value = F.when(F.col("value_base64"), F.unbase64("value").cast("string")).otherwise(F.col("value"))
        return raw.select(
            value.alias("value"), F.coalesce("headers", F.create_map().cast("map<string,string>")).alias("headers"),
            "topic", "partition", "offset", F.timestamp_millis("timestamp_ms").alias("timestamp"),
        )


def event_column(topic: str) -> str:
    """The column holding the parsed events of ``topic`` (``traffic-sensors`` -> ``traffic_sensors``)."""
    return topic.replace("-", "_")


def parse_events(records: DataFrame, topics: Sequence[str]) -> DataFrame:
    """The records of ``topics``, each parsed once with its topic's model, plus ``event_time`` and ``problem``.

    Each topic gets a struct column (:func:`event_column`), set on that topic's records and null on the others.
    ``event_time`` is the event's ``dateObserved``. ``problem`` is null for a good record, else why it cannot be
    used (not a JSON object, a required field missing or of the wrong type, a CloudEvent type that is not the
    topic's): such records are dead-lettered, never aggregated.
    """
    # The parsed structs come out of a generator (inline of a one-element array): the optimizer cannot push the
    # ``problem IS NULL`` filter below it, which otherwise inlined from_json into the filter once per checked
    # field (14 parses of every traffic record instead of 1; the parse-only query ran at 1,800 records/s).
    parsed_structs = F.struct(*[
        F.when(F.col("topic") == topic, F.from_json("value", spark_schema(stream_for_topic(topic).model)))
        .alias(event_column(topic))
        for topic in topics
    ])
    parsed = records.where(F.col("topic").isin(list(topics))).select("*", F.inline(F.array(parsed_structs)))
    columns = [F.col(event_column(topic)) for topic in topics]
    return parsed.withColumns({
        "event_time": F.coalesce(*[column["dateObserved"] for column in columns]),
        "problem": F.coalesce(*[F.when(F.col("topic") == topic, _problem(topic)) for topic in topics]),
    })


def event_key() -> list[Column]:
    """What identifies an event, for the jobs' deduplication: the columns :data:`EVENT_KEY`, two 64-bit hashes
    (``xxhash64``, inputs in two orders) of its CloudEvent source and id (``ce_source`` and ``ce_id`` headers), so a
    record sent twice (a retried POST, a producer retry) is one event. 128 bits make a collision among the events of
    open windows negligible, and two longs are the smallest key a state row can hold (the jobs keep one per event
    of every open window). A record without ``ce_id`` is its own: its topic, partition and offset."""
    id_ = F.col("headers")["ce_id"]
    cloudevent = [F.coalesce(F.col("headers")["ce_source"], F.lit("")), id_]
    record = [F.lit("/record"), F.col("topic"), F.col("partition"), F.col("offset")]
    return [F.when(id_.isNotNull(), of_event).otherwise(of_record).alias(name)
            for of_event, of_record, name in zip(_hashes(cloudevent), _hashes(record), EVENT_KEY)]


def _hashes(parts: list[Column]) -> tuple[Column, Column]:
    """Two 64-bit hashes of ``parts``: in order, and reversed with one more part (Spark's ``xxhash64`` chains its
    columns, each hashed with the former's hash as seed, and skips nulls)."""
    return F.xxhash64(*parts), F.xxhash64(*reversed(parts), F.lit(1))


def _problem(topic: str) -> Column:
    stream = stream_for_topic(topic)
    event = F.col(event_column(topic))
    problem = F.when(event.isNull(), F.lit("data: not a JSON object"))
    for name, info in stream.model.model_fields.items():
        if info.is_required():
            problem = problem.when(event[name].isNull(), F.lit(f"data.{name}: missing or of the wrong type"))
    ce_type = F.coalesce(F.col("headers")["ce_type"], F.lit("none"))
    return problem.when(
        ce_type != stream.ce_type, F.concat(F.lit(f"ce_type: expected {stream.ce_type} on {topic}, got "), ce_type)
    )


def read_events(spark: SparkSession, source: BusSource, topics: Sequence[str]) -> DataFrame:
    """Parsed events of ``topics`` from one read of the bus (see :func:`parse_events`)."""
    return parse_events(source.records(spark, topics), topics)
