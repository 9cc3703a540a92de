"""Ingest: device readings over HTTP become validated, normalized, enriched, pseudonymized CloudEvents on a topic.

Each ``functions/ingest-<stream>/handler.py`` serves :func:`ingest_app` for its stream. ``POST /`` takes:

- JSON (``application/json``): one reading (an object) or a batch (an array). A reading is the stream's model
  (``smartcity/events/schemas/``) in key-value form, or with NGSI-LD normalized attributes
  (``{"type": "Property", "value": 12, "unitCode": "MTS"}``, ``{"type": "GeoProperty", "value": {...}}``,
  ``{"type": "Relationship", "object": "urn:..."}``);
- CSV (``text/csv``): a header line, then one reading per line. ``lon`` and ``lat`` (or ``longitude`` and
  ``latitude``) columns make the ``location``; an empty cell is an absent value; a row with non-empty cells
  beyond the header's columns is refused.

Each reading then goes through:

1. **units**: a value whose unit is given (``unitCode``, or a key or column named ``field[unit]`` such as
   ``averageVehicleSpeed[m/s]`` or ``occupancy[%]``) is converted to the unit of the model's field (km/h,
   ratio 0..1, °C, hPa, ...); see :mod:`smartcity.normalization`;
2. **enrichment**: a local ``id`` gets its NGSI-LD prefix; a missing ``zone`` comes from the location; a missing
   ``refRoadSegment`` comes from the reference tables (the sensor's or car park's segment, else the nearest);
3. **validation** against the model: every error is reported with the reading's index, the field and the reason;
4. **privacy**: personal fields are pseudonymized or coarsened (:mod:`smartcity.privacy`);
5. **publishing**: a CloudEvent of the stream's type, keyed by the stream's key field, on the stream's topic (or
   the one the function's ``OUTPUT_TOPIC`` environment variable names), made by the platform's one recipe
   (:func:`smartcity.runtime.readings.reading_event`). Its ``id`` is derived from the stream, the entity and
   ``dateObserved``, so a reading sent twice is the same event and every store keeps it once.

Only a caller with credentials for the stream may post (an API key or an ``ingest`` JWT scoped to it, 401/403
otherwise: :mod:`smartcity.runtime.credentials`). The answer is 202 ``{"accepted": n, "rejected": 0, "ids":
[...]}`` when every reading was published. Errors are problem documents (RFC 9457, ``application/problem+json``,
:mod:`smartcity.runtime.problems`): 422 when some
readings were refused, one ``{"field", "reason"}`` per bad field with the reading's index first (``[2].speed``),
plus ``accepted``, ``rejected`` and ``ids`` (the others of the batch are still published; nothing invalid reaches
a topic); 400 naming ``body`` when the body cannot be read at all; 415 naming ``header.content-type`` for another
media type.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from smartcity.backends.database import Database
from smartcity.errors import FieldError
from smartcity.events import STREAMS, CityEvent, Stream, city, errors_by_field
from smartcity.events.common import NGSI_PREFIX
from smartcity.normalization import ItemError, normalize
from smartcity.privacy import PSEUDONYM_KEY_SECRET, Pseudonymizer
from smartcity.runtime.context import Context
from smartcity.runtime.credentials import IngestCredentials
from smartcity.runtime.problems import problem_response
from smartcity.runtime.publishing import Publisher
from smartcity.runtime.readings import event_id, reading_event  # noqa: F401 - event_id is imported from here too

MAX_ITEMS = 10_000
# An ingest function publishes to its stream's topic, or to the one its stack.yml environment names here.
OUTPUT_TOPIC_VARIABLE = "OUTPUT_TOPIC"
REFERENCE_REFRESH_S = 60.0
# Where a CSV row's cells beyond the header's columns go: no model has this field, so the row is refused naming it.
CSV_EXTRA_CELLS = "<cells beyond the header>"


class BodyError(ValueError):
    """The body as a whole cannot be read (400), or is of a media type ingest does not take (415)."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        self.field = "header.content-type" if status == 415 else "body"
        super().__init__(reason)

    def as_response(self, instance: str) -> Response:
        return problem_response(self.status, self.reason, {self.field: self.reason}, instance=instance)


@dataclass
class IngestReport:
    """What became of one request's readings: the ids published, and ``(index, field, reason)`` of those refused."""

    ids: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def refuse(self, index: int, name: str, reason: str) -> None:
        self.errors.append((index, name, reason))

    def as_response(self, instance: str) -> Response:
        """202 with the ids; a 422 problem naming each refused reading's bad fields (``[index].field``)."""
        rejected = len({index for index, _, _ in self.errors})
        counts: dict[str, Any] = {"accepted": len(self.ids), "rejected": rejected, "ids": self.ids}
        if not self.errors:
            return JSONResponse(counts, status_code=202)
        errors = [FieldError(field=f"[{index}].{name}" if name else f"[{index}]", reason=reason)
                  for index, name, reason in self.errors]
        detail = f"{rejected} of {rejected + len(self.ids)} readings refused; the {len(self.ids)} others are published"
        return problem_response(422, detail, errors, instance=instance, **counts)


# --- reading the body ---------------------------------------------------------------------------------------


def parse_items(body: bytes, content_type: str | None) -> list[Any]:
    """The readings of a request body: a JSON object or array, or CSV rows."""
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BodyError(400, f"the body is not UTF-8: {error}") from None
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise BodyError(400, f"the body is not JSON: {error}") from None
        items = parsed if isinstance(parsed, list) else [parsed]
    elif media_type in ("text/csv", "application/csv"):
        rows = csv.DictReader(io.StringIO(text), restkey=CSV_EXTRA_CELLS)
        if not rows.fieldnames:
            raise BodyError(400, "the CSV body has no header line")
        items = [_csv_reading(row) for row in rows]
    else:
        raise BodyError(415, f"media type {media_type!r} is not taken: send application/json or text/csv")
    if not items:
        raise BodyError(400, "the body holds no reading")
    if len(items) > MAX_ITEMS:
        raise BodyError(400, f"{len(items)} readings in one request; at most {MAX_ITEMS}")
    return items


def _csv_reading(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as a reading: an empty cell is an absent value; non-empty cells beyond the header's columns are
    kept under :data:`CSV_EXTRA_CELLS`, so that validation refuses the row instead of dropping them unseen."""
    reading = {k: v for k, v in row.items() if k and k != CSV_EXTRA_CELLS and v not in (None, "")}
    if extra := [cell for cell in row.get(CSV_EXTRA_CELLS, ()) if cell]:
        reading[CSV_EXTRA_CELLS] = extra
    return reading


# --- enrichment ---------------------------------------------------------------------------------------------


class ReferenceIndex:
    """Road segments, and the segment of each sensor and car park, read from the reference tables.

    Read on first use and again when a lookup misses and the last read is over :data:`REFERENCE_REFRESH_S` old
    (sensors are added as they first report).
    """

    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self.segments: list[tuple[str, float, float]] = []
        self.segment_of: dict[str, str] = {}

    def _refresh(self, force: bool = False) -> None:
        with self._lock:
            if not force and time.monotonic() - self._read_at < REFERENCE_REFRESH_S:
                return
            db = self._db()
            self.segments = [(r["segment_id"], r["lon"], r["lat"])
                             for r in db.query("SELECT segment_id, lon, lat FROM road_segments")]
            owners = db.query("SELECT sensor_id AS id, segment_id FROM sensors UNION ALL "
                              "SELECT parking_id AS id, segment_id FROM parkings WHERE segment_id IS NOT NULL")
            self.segment_of = {row["id"]: row["segment_id"] for row in owners}
            self._read_at = time.monotonic()

    def segment_for(self, entity_id: str | None, location: Any) -> str | None:
        """The entity's own segment if the reference data knows it, else the segment nearest to ``location``."""
        if not self.segments or (entity_id and entity_id not in self.segment_of):
            self._refresh()
        if entity_id in self.segment_of:
            return self.segment_of[entity_id]
        point = _point(location)
        if point is None or not self.segments:
            return None
        lon, lat = point
        scale = math.cos(math.radians(lat))  # a degree of longitude is shorter than one of latitude
        return min(self.segments, key=lambda s: ((s[1] - lon) * scale) ** 2 + (s[2] - lat) ** 2)[0]


def _point(location: Any) -> tuple[float, float] | None:
    try:
        lon, lat = location["coordinates"]
        return float(lon), float(lat)
    except (TypeError, KeyError, ValueError):
        return None


def enrich(model: type[CityEvent], item: dict[str, Any], reference: ReferenceIndex | None) -> dict[str, Any]:
    """Fill what the reading may leave out: the NGSI-LD id prefix, the zone, the road segment."""
    item = dict(item)
    if isinstance(item.get("id"), str) and item["id"] and not item["id"].startswith(NGSI_PREFIX):
        item["id"] = model.make_id(item["id"])
    point = _point(item.get("location"))
    if "zone" in model.model_fields and "zone" not in item and point and city().contains(*point):
        item["zone"] = city().zone_of(*point)
    if "refRoadSegment" in model.model_fields and "refRoadSegment" not in item and reference is not None:
        segment = reference.segment_for(item.get("id"), item.get("location"))
        if segment is not None:
            item["refRoadSegment"] = segment
    return item


# --- the pipeline -------------------------------------------------------------------------------------------


class Ingestor:
    """Turns request bodies of one stream into CloudEvents, and publishes them."""

    def __init__(
        self,
        stream: Stream,
        pseudonymizer: Callable[[], Pseudonymizer],
        publish: Callable[[list[CloudEvent]], None],
        reference: ReferenceIndex | None,
        source: str,
    ) -> None:
        self.stream = stream
        self._pseudonymizer = pseudonymizer
        self._publish = publish
        self.reference = reference
        self.source = source

    def event_of(self, item: Any) -> CloudEvent:
        """One reading's CloudEvent; :class:`ItemError` or ``ValidationError`` when it is refused."""
        model = self.stream.model
        reading = model.model_validate(enrich(model, normalize(model, item), self.reference))
        if self.stream.personal_fields:
            reading = self._pseudonymizer().apply(reading)
        return reading_event(self.stream, reading, self.source)

    def ingest(self, body: bytes, content_type: str | None) -> IngestReport:
        """Publish the valid readings of a body; report the others. :class:`BodyError` for an unreadable body."""
        report = IngestReport()
        events = []
        for index, item in enumerate(parse_items(body, content_type)):
            try:
                events.append(self.event_of(item))
            except ItemError as error:
                report.refuse(index, error.field, error.reason)
            except ValidationError as error:
                for name, reason in errors_by_field(error).items():
                    report.refuse(index, name, reason)
        self._publish(events)
        report.ids = [event.get_id() for event in events]
        return report


def ingest_app(topic: str, context: Context) -> FastAPI:
    """The FastAPI app of the ingest function of ``topic`` (``context``: the function's runtime context)."""
    stream = STREAMS[topic]
    publisher = Publisher(lambda: context.bus, context.env(OUTPUT_TOPIC_VARIABLE) or topic,
                          context.settings.topic_partitions)
    # the pseudonym key (a secret the function lists in stack.yml) is read when a personal field first needs it
    pseudonymizer = functools.cache(lambda: Pseudonymizer.from_secret(
        context.secret(PSEUDONYM_KEY_SECRET), context.settings.gps_precision_decimals))
    reference = ReferenceIndex(lambda: context.database) if "refRoadSegment" in stream.model.model_fields else None
    ingestor = Ingestor(stream, pseudonymizer, publisher.publish, reference, context.source)
    app = FastAPI(title=f"ingest-{topic}", description=f"Readings of the {topic} stream: {stream.description}.")
    credentials = IngestCredentials(topic, context.settings)
    app.state.authorize = credentials.refusal  # the gateway asks it before accepting an async call

    @app.post("/", status_code=202)
    async def ingest(request: Request) -> Response:
        """Validate, normalize, enrich and publish one reading or a batch (JSON or CSV); 422 lists refused ones."""
        refused = credentials.refusal(request.headers, request.url.path)
        if refused is not None:
            return refused
        body = await request.body()
        try:
            report = await run_in_threadpool(ingestor.ingest, body, request.headers.get("content-type"))
        except BodyError as error:
            return error.as_response(request.url.path)
        return report.as_response(request.url.path)

    @app.get("/schema")
    def schema() -> dict[str, Any]:
        """The JSON Schema of one reading of this stream (key-value form)."""
        return stream.model.model_json_schema()

    return app

