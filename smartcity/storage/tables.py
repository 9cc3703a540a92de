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
from datetime import datetime, timezone
from functools import cache, cached_property
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


_PLAIN, _LOCATION, _TIMESTAMP, _JSON = "plain", "location", "timestamp", "json"


@cache
def _value_plan(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """Each stored field of ``model`` and how its value becomes column values (:meth:`StreamTable.values`)."""
    def kind(columns: tuple[Column, ...]) -> str:
        if len(columns) == 2:
            return _LOCATION
        return {"timestamp": _TIMESTAMP, "json": _JSON}.get(columns[0].kind, _PLAIN)
    return tuple((name, kind(columns)) for name, columns in column_plan(model))


@dataclass(frozen=True)
class StreamTable:
    """One stream's table: its name, its columns, and the row of an event."""

    stream: str
    table: str
    model: type[CityEvent]

    @property
    def columns(self) -> list[Column]:
        return [Column("event_id", "text", False), *columns_of(self.model)]

    @cached_property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def values(self, event_id: str, event: CityEvent) -> list[Any]:
        """The row of an event, in :attr:`columns` order (what ``COPY`` takes), built once per event. Times are in
        UTC, so that SQLite's ISO text sorts in time order as PostgreSQL's timestamptz does."""
        row: list[Any] = [event_id]
        for name, kind in _value_plan(self.model):
            value = getattr(event, name)
            if kind is _PLAIN:
                row.append(value)
            elif kind is _LOCATION:
                row.extend(value.coordinates if value is not None else (None, None))
            elif value is None:
                row.append(None)
            elif kind is _TIMESTAMP:
                row.append(value.astimezone(timezone.utc))
            else:
                row.append(json.dumps(value, separators=(",", ":")))
        return row

    def row(self, event_id: str, event: CityEvent) -> dict[str, Any]:
        return dict(zip(self.column_names, self.values(event_id, event), strict=True))


STREAM_TABLES: dict[str, StreamTable] = {
    topic: StreamTable(topic, TABLE_OF_STREAM[topic], stream.model) for topic, stream in STREAMS.items()
}


def stream_table(stream: str) -> StreamTable:
    try:
        return STREAM_TABLES[stream]
    except KeyError:
        raise KeyError(f"no table for stream {stream!r}; known streams: {', '.join(STREAM_TABLES)}") from None
