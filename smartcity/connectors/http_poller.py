"""Any open-data API answering JSON or CSV, mapped onto a stream by a mapping file (YAML or JSON).

A mapping file::

    stream: weather                 # the target stream (topic); its ingest function takes the readings
    format: json                    # json or csv
    records: data.observations      # JSON: dotted path to the list of records ("" : the document is the list)
    delimiter: ","                  # CSV: the cell separator
    id: station.id                  # the record's field holding the entity's id
    fields:                         # the stream's field: a record field, or a rule
      temperature: {from: temp_f, unit: "°F"}        # the source's unit: ingest converts to the model's
      relativeHumidity: {from: humidity, unit: "%"}
      dateObserved: {from: time, type: timestamp}   # POSIX seconds (or milliseconds) or an ISO 8601 string
      lon: station.lon                               # lon + lat make the location
      lat: station.lat
      precipitation: {from: rain_mm, type: float, scale: 1.0}
      stationName: {value: "Airport"}                # a constant

A rule's ``type`` (``str``, ``int``, ``float``, ``bool``, ``timestamp``) converts the value first, ``scale``
multiplies it, ``unit`` sends it as ``field[unit]`` so that ingest converts it. A record field that is absent
or empty is left out (ingest names it if the stream requires it). Without a ``dateObserved`` rule, the time of
the poll is the observation time. The id is prefixed by ingest (``urn:ngsi-ld:<Type>:``).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smartcity.connectors.polling import Fetcher, MalformedFeed, Reading
from smartcity.errors import ConfigurationError
from smartcity.events import STREAMS, errors_by_field

MISSING = object()
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": str, "int": lambda v: int(float(v)), "float": float,
    "bool": lambda v: v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "y", "t"),
}


class FieldRule(BaseModel):
    """How one field of the stream is made from a record."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    source: str | None = Field(None, alias="from", description="Dotted path of the record's field")
    value: Any = Field(None, description="A constant instead of a record field")
    type: Literal["str", "int", "float", "bool", "timestamp"] | None = None
    scale: float | None = None
    unit: str | None = Field(None, description="The source's unit; ingest converts it to the stream's")

    @model_validator(mode="after")
    def _one_origin(self) -> FieldRule:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of `from` (a record field) and `value` (a constant)")
        return self


class Mapping(BaseModel):
    """A mapping file: see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: str
    format: Literal["json", "csv"] = "json"
    records: str = ""
    delimiter: str = Field(",", min_length=1, max_length=1)
    id: str = Field(min_length=1)
    fields: dict[str, FieldRule] = Field(min_length=1)

    @field_validator("stream")
    @classmethod
    def _known_stream(cls, value: str) -> str:
        if value not in STREAMS:
            raise ValueError(f"unknown stream {value!r}; known: {', '.join(STREAMS)}")
        return value

    @field_validator("fields", mode="before")
    @classmethod
    def _short_rules(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"from": rule} if isinstance(rule, str) else rule for name, rule in value.items()}
        return value


def load_mapping(path: Path) -> Mapping:
    """The mapping file at ``path`` (YAML or JSON); :class:`ConfigurationError` naming each bad field."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError("--mapping", f"{path}: {error}") from None
    try:
        return Mapping.model_validate(document)
    except ValidationError as error:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in errors_by_field(error).items())
        raise ConfigurationError("--mapping", f"{path}: {reasons}") from None


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` of ``record`` (a list index is a number), or :data:`MISSING`."""
    value = record
    for part in path.split(".") if path else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def timestamp(value: Any) -> str:
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        seconds = float(value)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, timezone.utc).isoformat()
    return str(value)


def apply(rule: FieldRule, record: Any) -> Any:
    """The value ``rule`` makes of ``record``; :data:`MISSING` when its field is absent or empty.
    A value that does not convert is sent as it is, so that ingest refuses it naming the field."""
    value = rule.value if rule.source is None else lookup(record, rule.source)
    if value is MISSING or value is None or value == "":
        return MISSING
    try:
        if rule.type == "timestamp":
            value = timestamp(value)
        elif rule.type is not None:
            value = CONVERTERS[rule.type](value)
        if rule.scale is not None:
            value = float(value) * rule.scale
    except (TypeError, ValueError):
        return value
    return value


class HttpSource:
    """Polls one URL and maps its records with a :class:`Mapping`."""

    kind = "http"

    def __init__(self, url: str, mapping: Mapping, clock: Callable[[], datetime] | None = None) -> None:
        self.url = url
        self.mapping = mapping
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def read(self, fetcher: Fetcher) -> list[Reading] | None:
        body = fetcher.get(self.url)
        if body is None:
            return None
        now = self.clock().isoformat()
        return [self.reading(index, record, now) for index, record in enumerate(self.records(body))]

    def records(self, body: bytes) -> list[Any]:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise MalformedFeed(self.url, "body", f"not UTF-8: {error}", body) from None
        if self.mapping.format == "csv":
            rows = csv.DictReader(io.StringIO(text), delimiter=self.mapping.delimiter)
            if not rows.fieldnames:
                raise MalformedFeed(self.url, "body", "the CSV has no header line", body)
            return list(rows)
        try:
            document = json.loads(text)
        except ValueError as error:
            raise MalformedFeed(self.url, "body", f"not JSON: {error}", body) from None
        records = lookup(document, self.mapping.records)
        if not isinstance(records, list):
            where = self.mapping.records or "<document>"
            raise MalformedFeed(self.url, where, "the records path does not lead to a list", body)
        return records

    def reading(self, index: int, record: Any, now: str) -> Reading:
        entity = lookup(record, self.mapping.id)
        data: dict[str, Any] = {"dateObserved": now}
        if entity not in (MISSING, None, ""):
            data["id"] = str(entity)
        for name, rule in self.mapping.fields.items():
            value = apply(rule, record)
            if value is not MISSING:
                data[f"{name}[{rule.unit}]" if rule.unit else name] = value
        key = data.get("id", f"<record {index} without {self.mapping.id}>")
        return Reading(self.mapping.stream, key, data)
