"""Where the jobs' micro-batches go, from ``foreachBatch``: database upserts and the bus.

Every write is idempotent, because Spark replays the last micro-batch after a crash: rows are upserted on their
(entity, window_start) key, and derived CloudEvents carry ids fixed by what they describe, so a consumer that
deduplicates on (source, id) sees each once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smartcity.backends.bus import EventBus
from smartcity.errors import problem
from smartcity.runtime.bindings import error_data
from smartcity.settings import DEAD_LETTER_TOPIC

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def collect_records(batch: DataFrame) -> list[dict[str, Any]]:
    """The rows of a (small) micro-batch output as dicts, timestamps as tz-aware UTC datetimes, maps as dicts.

    The rows come over as one Arrow table, column by column: a micro-batch of 12,500 windows took 2.0-2.5 s to
    ``collect()`` as pickled Rows, 0.3-0.6 s this way (local[2], a loaded machine). Timestamps are fetched as Unix
    microseconds and converted here, exactly (Arrow's own are zoneinfo-aware and several times slower to convert).
    """
    fields = {field.name: field.dataType for field in batch.schema.fields}
    columns = [F.unix_micros(name).alias(name) if isinstance(kind, T.TimestampType) else F.col(name)
               for name, kind in fields.items()]
    table = batch.select(*columns).toArrow()
    values = [_python_values(table.column(name).to_pylist(), fields[name]) for name in fields]
    names = list(fields)
    return [dict(zip(names, row)) for row in zip(*values)]


def _python_values(values: list[Any], kind: T.DataType) -> list[Any]:
    """A column's Arrow values as PySpark's ``collect()`` gives them (a timestamp column holds Unix microseconds)."""
    if isinstance(kind, T.TimestampType):
        return [None if micros is None else EPOCH + timedelta(microseconds=micros) for micros in values]
    if isinstance(kind, T.MapType):  # Arrow gives a map as its (key, value) pairs
        return [None if pairs is None else dict(pairs) for pairs in values]
    return values


class Stopwatch:
    """Milliseconds spent in each phase of a micro-batch's write, for the debug log (where a batch's time goes)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """End ``phase``: the time since the previous lap (or since the start) is its own."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + (now - self._last) * 1000
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{phase} {ms:.0f} ms" for phase, ms in self.phases.items())


def dead_letter(bus: EventBus, records: Sequence[Mapping[str, Any]], job: str, topic: str = DEAD_LETTER_TOPIC) -> int:
    """Send unusable records to the dead-letter topic with the reason, Knative's way.

    Each keeps its value and headers, plus the ``ce_knativeerrordest`` (which job refused it),
    ``ce_knativeerrorcode`` (422) and ``ce_knativeerrordata`` (base64 JSON: the platform's problem document, its
    detail the reason, with where the record was)
    extension headers. ``records`` have ``value``, ``headers``, ``topic``, ``partition``, ``offset``, ``problem``.
    """
    for record in records:
        headers = dict(record["headers"] or {})
        headers.update({
            "ce_knativeerrordest": f"smartcity-streaming/{job}",
            "ce_knativeerrorcode": "422",
            "ce_knativeerrordata": error_data(problem(
                422, record["problem"], instance=f"smartcity-streaming/{job}", topic=record["topic"],
                partition=record["partition"], offset=record["offset"],
            ).model_dump(mode="json")),
        })
        bus.publish(topic, (record["value"] or "").encode(), key=None,
                    headers=[(name, str(value).encode()) for name, value in headers.items()])
    bus.flush()
    return len(records)
