"""CloudEvents over HTTP (binary, structured and batch modes) and over Kafka records (binary mode).

Built on the SDK's bindings (``cloudevents.core.bindings.http`` and ``.kafka``); what is added here is what the
runtime needs around them: a received event must carry its own id (the SDK would invent one), the batch mode
(``application/cloudevents-batch+json``, a JSON array of structured events) that the SDK lacks, and the wrapping of
Kafka records that are not CloudEvents with the attributes Knative's KafkaSource gives them.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping, Sequence

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from smartcity.backends.bus import Record
from smartcity.runtime.events import JSON_CONTENT_TYPE, InvalidEvent, build_event, check_required

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
JSON_FORMAT = JSONFormat()


class Mode(str, Enum):
    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _event_from_dict(item: Any, where: str = "") -> CloudEvent:
    """One structured event already parsed from JSON (an element of a batch, or a whole structured body)."""
    if not isinstance(item, dict):
        raise InvalidEvent("invalid structured CloudEvent", {where or "body": "expected a JSON object"})
    try:
        check_required(item)
        return JSON_FORMAT.read(build_event, json.dumps(item))
    except InvalidEvent as error:
        raise InvalidEvent(error.reason, {f"{where}{name}": why for name, why in error.fields.items()}) from None
    except (ValueError, TypeError) as error:
        raise InvalidEvent("invalid structured CloudEvent", {where or "body": str(error)}) from None


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidEvent("body is not JSON", {"body": str(error)}) from None


def events_from_http(headers: Mapping[str, str], body: bytes) -> tuple[Mode, list[CloudEvent]]:
    """The events of one HTTP request, and the mode they came in; :class:`InvalidEvent` names what is wrong."""
    lowered = {name.lower(): value for name, value in headers.items()}
    media_type = _media_type(lowered.get("content-type"))
    if media_type == BATCH_CONTENT_TYPE:
        items = _parse_json(body)
        if not isinstance(items, list):
            raise InvalidEvent("invalid CloudEvents batch", {"body": "expected a JSON array of events"})
        return Mode.BATCH, [_event_from_dict(item, f"[{index}].") for index, item in enumerate(items)]
    if media_type == STRUCTURED_CONTENT_TYPE:
        return Mode.STRUCTURED, [_event_from_dict(_parse_json(body))]
    if any(name.startswith(ce_http.CE_PREFIX) for name in lowered):
        check_required({name[len(ce_http.CE_PREFIX):]: value for name, value in lowered.items()})
        message = ce_http.HTTPMessage(headers=lowered, body=body)
        try:
            return Mode.BINARY, [ce_http.from_binary(message, JSON_FORMAT, build_event)]
        except (ValueError, TypeError) as error:
            if isinstance(error, InvalidEvent):
                raise
            raise InvalidEvent("invalid binary CloudEvent", {"headers": str(error)}) from None
    raise InvalidEvent(
        "not a CloudEvent",
        {"content-type": f"{media_type or 'none'}: send ce-* headers (binary mode), {STRUCTURED_CONTENT_TYPE} "
                         f"or {BATCH_CONTENT_TYPE}"},
    )


def events_to_http(events: Sequence[CloudEvent], mode: Mode) -> tuple[int, dict[str, str], bytes]:
    """The HTTP reply carrying a handler's result events: none (204), one in the request's mode, or a batch."""
    if mode is Mode.BATCH or len(events) > 1:
        body = b"[" + b",".join(JSON_FORMAT.write(event) for event in events) + b"]"
        return 200, {"content-type": BATCH_CONTENT_TYPE}, body
    if not events:
        return 204, {}, b""
    convert = ce_http.to_structured if mode is Mode.STRUCTURED else ce_http.to_binary
    message = convert(events[0], JSON_FORMAT)
    return 200, dict(message.headers), message.body


# --- Kafka -------------------------------------------------------------------------------------------------


def _binary_headers(record: Record) -> dict[str, bytes] | None:
    """A binary-mode record's ``ce_*`` headers by attribute name, and ``content-type`` as ``datacontenttype``,
    still bytes, in one pass over its headers (names lower-cased, the last of a repeated name winning); None when
    it has no ``ce_`` header, so is not in binary mode."""
    found: dict[str, bytes] = {}
    binary = False
    for name, raw in record.headers:
        name = name.lower()
        if name.startswith(ce_kafka.CE_PREFIX):
            found[name[len(ce_kafka.CE_PREFIX):]] = raw
            binary = True
        elif name == "content-type":
            found["datacontenttype"] = raw
    return found if binary else None


def _is_structured(headers: Mapping[str, bytes]) -> bool:
    content_type = headers.get("content-type")
    return content_type is not None and _media_type(content_type.decode("utf-8", "replace")) == STRUCTURED_CONTENT_TYPE


def event_from_record(record: Record, source_prefix: str, raw_json: bool = False) -> CloudEvent:
    """The CloudEvent a record carries, or (for a plain record) the one Knative's KafkaSource would make of it.

    ``source_prefix`` is the KafkaSource's URI (``/apis/v1/namespaces/<ns>/kafkasources/<name>``); the wrapped
    event's source is ``<source_prefix>#<topic>``. :class:`InvalidEvent` when a CloudEvent record is malformed.
    ``raw_json``: the JSON data of a binary-mode record stays the record's bytes, for a handler's model to parse
    and validate in one pass (pydantic's ``model_validate_json``) rather than ``json.loads`` and then validation.
    """
    binary = _binary_headers(record)
    headers = {name.lower(): value for name, value in record.headers} if binary is None else {}
    if binary is None and not _is_structured(headers):
        return wrap_record(record, source_prefix)
    try:
        if binary is not None:
            attributes = _binary_attributes(binary, record.key)
            check_required(attributes)
            return build_event(attributes, _binary_data(record.value, attributes, raw_json))
        if isinstance(item := _parse_json(record.value), dict):
            check_required(item)
        message = ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
        return ce_kafka.from_structured(message, JSON_FORMAT, build_event)
    except InvalidEvent:
        raise
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise InvalidEvent("invalid CloudEvent record", {"record": str(error)}) from None


def _binary_attributes(headers: Mapping[str, bytes], key: bytes | str | None) -> dict[str, Any]:
    """The attributes of a binary-mode record as the SDK's ``from_binary`` reads them (``ce_*`` headers,
    ``content-type``, the key as ``partitionkey``); the time parsed by ``datetime.fromisoformat`` (ten times
    dateutil's speed), dateutil kept for the ISO forms it alone reads."""
    attributes: dict[str, Any] = {name: raw.decode("utf-8") for name, raw in headers.items()}
    if "time" in attributes:
        try:
            attributes["time"] = datetime.fromisoformat(attributes["time"])
        except ValueError:
            attributes["time"] = isoparse(attributes["time"])
    if key is not None:
        attributes["partitionkey"] = key.decode("utf-8") if isinstance(key, bytes) else key
    return attributes


def _binary_data(value: bytes, attributes: Mapping[str, Any], raw_json: bool) -> Any:
    content_type = attributes.get("datacontenttype")
    if raw_json and value and _media_type(content_type or JSON_CONTENT_TYPE).endswith("json"):
        return bytes(value)
    return JSON_FORMAT.read_data(value, content_type)


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def wrap_record(record: Record, source_prefix: str, data: Any = None) -> CloudEvent:
    """A plain record as KafkaSource delivers it: type dev.knative.kafka.event, its headers as extensions."""
    headers = {name.lower(): value.decode("utf-8", "replace") for name, value in record.headers}
    content_type = headers.get("content-type")
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"partition:{record.partition}/offset:{record.offset}",
        "source": f"{source_prefix}#{record.topic}",
        "type": KAFKA_EVENT_TYPE,
        "subject": f"partition:{record.partition}#{record.offset}",
        "time": datetime.fromtimestamp(record.timestamp_ms / 1000, timezone.utc) if record.timestamp_ms
        else datetime.now(timezone.utc),
    }
    if content_type:
        attributes["datacontenttype"] = content_type
    for name, value in headers.items():
        attributes[f"kafkaheader{_NOT_ALNUM.sub('', name)}"] = value
    if record.key is not None:
        key = record.key.decode("utf-8", "replace")
        attributes["key"] = attributes["partitionkey"] = key
    if data is None:
        data = JSON_FORMAT.read_data(record.value, content_type)
    return build_event(attributes, data)


def record_of(event: CloudEvent) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers publishing ``event`` in Kafka binary mode; the key is its ``partitionkey``."""
    message = ce_kafka.to_binary(event, JSON_FORMAT)
    key = message.key.encode("utf-8") if isinstance(message.key, str) else message.key
    return key, message.value, list(message.headers.items())


def with_extensions(event: CloudEvent, **extensions: Any) -> CloudEvent:
    """A copy of ``event`` with extension attributes added (dead-letter error details)."""
    return build_event({**event.get_attributes(), **extensions}, event.get_data())


def error_data(payload: Mapping[str, Any], limit: int = 1024) -> str:
    """Knative's ``knativeerrordata``: the error body, at most ``limit`` bytes, base64-encoded."""
    return base64.b64encode(json.dumps(payload).encode("utf-8")[:limit]).decode("ascii")
