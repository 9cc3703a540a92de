"""CloudEvents as the runtime hands them to handlers, and as handlers create them.

The wire format is the official SDK's (``cloudevents.core.v1.event.CloudEvent``, cloudevents 2.x). A handler
sees an :class:`Event`: the SDK event plus its ``data`` validated into the function's pydantic model. Events the
platform publishes are made with :func:`new_event`, which insists on a versioned type
(``city.traffic.flow.observed.v1``) and serialises pydantic data as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Mapping, TypeVar

from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.spec import SPECVERSION_V1_0
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

from smartcity.errors import Problem, problem
from smartcity.runtime import tracing

T = TypeVar("T")

JSON_CONTENT_TYPE = "application/json"
# reverse-DNS words, then a version: city.traffic.flow.observed.v1
VERSIONED_TYPE = re.compile(r"[a-z0-9]+(\.[a-z0-9-]+)+\.v[0-9]+")
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")


class InvalidEvent(ValueError):
    """A message that is not a valid CloudEvent, or whose data does not fit the function's model.

    ``fields`` maps each bad attribute or data field (``"id"``, ``"data.speed"``) to the reason.
    """

    def __init__(self, reason: str, fields: Mapping[str, str] | None = None) -> None:
        self.reason = reason
        self.fields = dict(fields or {})
        details = "; ".join(f"{name}: {why}" for name, why in self.fields.items())
        super().__init__(f"{reason} ({details})" if details else reason)

    def as_problem(self, instance: str | None = None) -> Problem:
        """The 400 problem document naming each bad field: what the function server answers and what the Kafka
        trigger's dead letter carries."""
        return problem(400, self.reason, self.fields, instance=instance)


@dataclass(frozen=True)
class Event(Generic[T]):
    """One incoming CloudEvent with its data validated into the function's model (or raw, with no model)."""

    cloudevent: CloudEvent
    data: T

    @property
    def id(self) -> str:
        return self.cloudevent.get_id()

    @property
    def source(self) -> str:
        return self.cloudevent.get_source()

    @property
    def type(self) -> str:
        return self.cloudevent.get_type()

    @property
    def subject(self) -> str | None:
        return self.cloudevent.get_subject()

    @property
    def time(self) -> datetime | None:
        return self.cloudevent.get_time()

    def extension(self, name: str) -> Any:
        return self.cloudevent.get_extension(name)


_NON_EMPTY_TEXT = frozenset({"id", "source", "type", "subject", "datacontenttype", "dataschema"})
_EXTENSION_NAME = re.compile(r"[a-z0-9]+")


def _plainly_valid(attributes: Mapping[str, Any]) -> bool:
    """True when the SDK's checks would pass ``attributes`` (with a time): each checked once, in one pass.

    False for anything else, which then goes through the SDK for its verdict and its errors."""
    for name, value in attributes.items():
        if name in _NON_EMPTY_TEXT:
            if not (value and isinstance(value, str)):
                return False
        elif name == "time":
            if not (isinstance(value, datetime) and value.tzinfo):
                return False
        elif name == "specversion":
            if value != SPECVERSION_V1_0:
                return False
        elif name == "data" or not _EXTENSION_NAME.fullmatch(name):
            return False
    return "id" in attributes and "source" in attributes and "type" in attributes and "time" in attributes


def build_event(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """An SDK event, or :class:`InvalidEvent` naming each bad attribute (the SDK's checks, keyed by attribute).

    Attributes that plainly pass (nearly all: every record the trigger decodes) skip the SDK's constructor, whose
    checks cost more than the rest of decoding a record; the event is the same SDK object with the same fields."""
    if _plainly_valid(attributes):
        event = CloudEvent.__new__(CloudEvent)
        event._attributes, event._data = attributes, data
        return event
    try:
        return CloudEvent(attributes, data)
    except CloudEventValidationError as error:
        fields = {name: "; ".join(str(e) for e in errors) for name, errors in error.errors.items()}
        raise InvalidEvent("invalid CloudEvent attributes", fields) from None


def check_required(attributes: Mapping[str, Any]) -> None:
    """The SDK fills a missing id or specversion with defaults; a received event must carry its own."""
    missing = {name: "required attribute is missing" for name in REQUIRED_ATTRIBUTES if not attributes.get(name)}
    if missing:
        raise InvalidEvent("invalid CloudEvent attributes", missing)


def new_event(
    type: str,
    source: str,
    data: BaseModel | Mapping[str, Any] | None = None,
    *,
    id: str | None = None,
    subject: str | None = None,
    time: datetime | None = None,
    partitionkey: str | None = None,
    **extensions: Any,
) -> CloudEvent:
    """A CloudEvent the platform publishes. ``partitionkey`` becomes the Kafka record key (order per key).

    Give ``id`` when the event derives from another one (``f"{event.id}:flow"``): a re-run after a redelivery
    then publishes the same id, and consumers deduplicating on (source, id) drop the copy. Unless ``traceparent``
    is given, the event carries a child span of the current trace, or starts a trace (:mod:`runtime.tracing`).
    """
    if not VERSIONED_TYPE.fullmatch(type):
        raise InvalidEvent("invalid event type", {"type": f"{type!r} is not a versioned type like city.traffic.flow.observed.v1"})
    attributes: dict[str, Any] = {"type": type, "source": source, "specversion": "1.0",
                                  **tracing.outgoing_attributes(extensions), **extensions}
    optional = {"id": id, "subject": subject, "time": time, "partitionkey": partitionkey}
    attributes.update({name: value for name, value in optional.items() if value is not None})
    if data is not None:
        attributes["datacontenttype"] = JSON_CONTENT_TYPE
    payload = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    return build_event(attributes, dict(payload) if payload is not None else None)
