"""The time-series table of each stream, and how an event becomes a row of it.

Every stream's table has the columns ``event_id``, ``observed_at`` (the event's ``dateObserved``), ``entity_id``
(its NGSI-LD ``id``) and ``stored_at`` (set by the database), then one column per field of the stream's model,
named mechanically: ``location`` gives ``lon`` and ``lat``, ``zone`` gives ``zone_id``, ``refRoadSegment`` gives
``segment_id``, any other field its name in snake_case (``averageVehicleSpeed`` -> ``average_vehicle_speed``).
A mapping (an alert's ``contributions``) is stored as JSON text. The constant NGSI ``type`` is left out.
:mod:`smartcity.storage.schema` builds the stream tables from these columns, so a model change changes the tables
of new databases; existing ones need a revision that does the same (the tests that take over a database of the old
SQL migrations, and ``smartcity db status``, show the difference until there is one).
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from functools import cache
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel

from smartcity.events import STREAMS, CityEvent, Location

TABLE_OF_STREAM = {topic: stream.table for topic, stream in STREAMS.items()}  # each descriptor's `table`
RENAMED = {"id": "entity_id", "dateObserved": "observed_at", "zone": "zone_id", "refRoadSegment": "segment_id"}
SKIPPED = {"type"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["text", "integer", "double", "boolean", "timestamp", "json"]
    nullable: bool


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def columns_of(model: type[BaseModel]) -> list[Column]:
    """The table columns that hold ``model``'s fields (without ``event_id`` and ``stored_at``)."""
    return [column for _, columns in column_plan(model) for column in columns]


@cache
def column_plan(model: type[BaseModel]) -> tuple[tuple[str, tuple[Column, ...]], ...]:
    """Each stored field of ``model`` with the column(s) holding it (worked out once per model)."""
    return tuple((name, tuple(_field_columns(model, name))) for name in model.model_fields if name not in SKIPPED)


def _field_columns(model: type[BaseModel], name: str) -> list[Column]:
    kind, nullable = _kind_of(model.model_fields[name].annotation)
    if kind == "location":
        prefix = "" if name == "location" else f"{snake_case(name)}_"
        return [Column(f"{prefix}lon", "double", nullable), Column(f"{prefix}lat", "double", nullable)]
    return [Column(RENAMED.get(name) or snake_case(name), kind, nullable)]


def _kind_of(annotation: Any) -> tuple[str, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _kind_of(inner)[0], True
    if typing.get_origin(annotation) is typing.Annotated:
        return _kind_of(args[0])
    if typing.get_origin(annotation) is Literal:
        return "text", False
    if typing.get_origin(annotation) is dict:
        return "json", False
    kinds = {bool: "boolean", int: "integer", float: "double", str: "text", datetime: "timestamp",
             AwareDatetime: "timestamp", Location: "location"}
    for python_type, kind in kinds.items():
        if isinstance(annotation, type) and issubclass(annotation, python_type):
            return kind, False
    raise TypeError(f"no column type for the annotation {annotation!r}")


@dataclass(frozen=True)
class StreamTable:
    """One stream's table: its name, its columns, and the row of an event."""

    stream: str
    table: str
    model: type[CityEvent]

    @property
    def columns(self) -> list[Column]:
        return [Column("event_id", "text", False), *columns_of(self.model)]

    def row(self, event_id: str, event: CityEvent) -> dict[str, Any]:
        row: dict[str, Any] = {"event_id": event_id}
        for name, columns in column_plan(self.model):
            value = getattr(event, name)
            if len(columns) == 2:  # a Location: lon, lat
                row[columns[0].name], row[columns[1].name] = value.coordinates if value else (None, None)
            elif columns[0].kind == "json" and value is not None:
                row[columns[0].name] = json.dumps(value, separators=(",", ":"))
            else:
                row[columns[0].name] = value
        return row


STREAM_TABLES: dict[str, StreamTable] = {
    topic: StreamTable(topic, TABLE_OF_STREAM[topic], stream.model) for topic, stream in STREAMS.items()
}


def stream_table(stream: str) -> StreamTable:
    try:
        return STREAM_TABLES[stream]
    except KeyError:
        raise KeyError(f"no table for stream {stream!r}; known streams: {', '.join(STREAM_TABLES)}") from None
