"""CloudEvents over HTTP (binary, structured, batch) and Kafka records, through the SDK's own encoders."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import Record
from smartcity.runtime.bindings import (
    BATCH_CONTENT_TYPE,
    KAFKA_EVENT_TYPE,
    Mode,
    event_from_record,
    events_from_http,
    events_to_http,
    record_of,
)
from smartcity.runtime.events import InvalidEvent, build_event, new_event

PREFIX = "/apis/v1/namespaces/smartcity/kafkasources/echo-source"


def _event(**attributes) -> CloudEvent:
    return CloudEvent({"type": "city.test.v1", "source": "/tests", "id": "e-1", **attributes}, {"speed": 42.5})


def test_binary_and_structured_requests_from_the_sdk_give_the_same_event():
    event = _event(subject="sensor-7")
    binary = sdk_http.to_binary(event, JSONFormat())
    structured = sdk_http.to_structured(event, JSONFormat())

    mode_b, [from_binary] = events_from_http(binary.headers, binary.body)
    mode_s, [from_structured] = events_from_http(structured.headers, structured.body)

    assert (mode_b, mode_s) == (Mode.BINARY, Mode.STRUCTURED)
    for received in (from_binary, from_structured):
        assert received.get_id() == "e-1"
        assert received.get_subject() == "sensor-7"
        assert received.get_data() == {"speed": 42.5}


def test_batch_request_carries_every_event_in_order():
    events = [_event(id=f"e-{i}") for i in range(3)]
    body = json.dumps([json.loads(JSONFormat().write(e)) for e in events]).encode()
    mode, received = events_from_http({"Content-Type": BATCH_CONTENT_TYPE}, body)
    assert mode is Mode.BATCH
    assert [e.get_id() for e in received] == ["e-0", "e-1", "e-2"]


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        ({"ce-type": "t.v1", "ce-source": "/s", "ce-specversion": "1.0"}, b"{}", "id"),
        ({"content-type": "application/cloudevents+json"}, b'{"type": "t.v1", "id": "1", "specversion": "1.0"}', "source"),
        ({"content-type": "application/cloudevents+json"}, b"{not json", "body"),
        ({"content-type": BATCH_CONTENT_TYPE}, b'[{"type": "t.v1", "source": "/s", "specversion": "1.0"}]', "[0].id"),
        ({"content-type": BATCH_CONTENT_TYPE}, b'{"type": "t.v1"}', "body"),
        ({"content-type": "application/json"}, b"{}", "content-type"),
        ({"ce-type": "t.v1", "ce-source": "/s", "ce-id": "1", "ce-specversion": "0.3"}, b"{}", "specversion"),
    ],
)
def test_an_invalid_event_is_refused_naming_the_field(headers, body, field):
    with pytest.raises(InvalidEvent) as caught:
        events_from_http(headers, body)
    assert field in caught.value.fields


def test_reply_mode_follows_the_request_and_the_number_of_events():
    one, two = _event(id="r-1"), _event(id="r-2")
    assert events_to_http([], Mode.BINARY)[0] == 204
    status, headers, body = events_to_http([one], Mode.BINARY)
    assert status == 200 and headers["ce-id"] == "r-1" and json.loads(body) == {"speed": 42.5}
    status, headers, body = events_to_http([one], Mode.STRUCTURED)
    assert headers["content-type"] == "application/cloudevents+json" and json.loads(body)["id"] == "r-1"
    status, headers, body = events_to_http([one, two], Mode.BINARY)
    assert headers["content-type"] == BATCH_CONTENT_TYPE and [e["id"] for e in json.loads(body)] == ["r-1", "r-2"]
    assert json.loads(events_to_http([], Mode.BATCH)[2]) == []


def _record(value: bytes, headers, key=None, offset=7) -> Record:
    return Record("readings", 1, offset, key, value, list(headers), timestamp_ms=1_700_000_000_000)


def test_records_published_in_binary_mode_decode_with_the_sdk_and_back():
    event = new_event("city.test.done.v1", "/tests", {"a": 1}, id="x-1", partitionkey="sensor-3")
    key, value, headers = record_of(event)
    assert key == b"sensor-3"
    assert dict(headers)["ce_type"] == b"city.test.done.v1"
    decoded = sdk_kafka.from_binary(sdk_kafka.KafkaMessage(dict(headers), key, value), JSONFormat())
    assert decoded.get_id() == "x-1" and decoded.get_data() == {"a": 1}
    assert event_from_record(_record(value, headers, key), PREFIX).get_id() == "x-1"


@pytest.mark.parametrize("moment", ["2025-03-01T08:30:00.123456Z", "2025-03-01T09:30:00+01:00", "20250301T083000Z"])
def test_a_binary_record_decodes_as_the_sdk_decodes_it_and_raw_json_keeps_the_data_bytes(moment):
    event = new_event("city.test.done.v1", "/tests", {"a": 1}, id="x-1", partitionkey="sensor-3", trace="t")
    key, value, headers = record_of(event)
    headers = [(name, moment.encode()) if name == "ce_time" else (name, raw) for name, raw in headers]
    sdk = sdk_kafka.from_binary(sdk_kafka.KafkaMessage(dict(headers), key, value), JSONFormat())
    ours = event_from_record(_record(value, headers, key), PREFIX)
    assert ours.get_attributes() == sdk.get_attributes() and ours.get_data() == sdk.get_data() == {"a": 1}
    raw = event_from_record(_record(value, headers, key), PREFIX, raw_json=True)
    assert raw.get_attributes() == sdk.get_attributes() and raw.get_data() == value
    assert raw.get_time() == datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc).replace(microsecond=raw.get_time().microsecond)


def test_structured_records_pass_through():
    message = sdk_kafka.to_structured(_event(id="s-1"), JSONFormat())
    event = event_from_record(_record(message.value, message.headers.items()), PREFIX)
    assert event.get_id() == "s-1" and event.get_type() == "city.test.v1"


def test_a_plain_record_is_wrapped_as_knative_kafkasource_wraps_it():
    record = _record(b'{"speed": 3}', [("content-type", b"application/json"), ("trace-id", b"abc")], key=b"k1")
    event = event_from_record(record, PREFIX)
    assert event.get_type() == KAFKA_EVENT_TYPE
    assert event.get_source() == f"{PREFIX}#readings"
    assert event.get_id() == "partition:1/offset:7"
    assert event.get_subject() == "partition:1#7"
    assert event.get_time() == datetime.fromtimestamp(1_700_000_000, timezone.utc)
    assert event.get_extension("kafkaheadertraceid") == "abc"
    assert event.get_extension("key") == "k1"
    assert event.get_data() == {"speed": 3}


@pytest.mark.parametrize(
    "headers",
    [
        [("ce_type", b"t.v1"), ("ce_source", b"/s"), ("ce_specversion", b"1.0")],
        [("content-type", b"application/cloudevents+json")],
    ],
)
def test_a_malformed_cloudevent_record_is_invalid(headers):
    with pytest.raises(InvalidEvent):
        event_from_record(_record(b"[1, 2", headers), PREFIX)


MOMENT = datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)
VALID_ATTRIBUTES = {"type": "city.test.v1", "source": "/tests", "id": "e-1", "specversion": "1.0", "time": MOMENT,
                    "subject": "s", "datacontenttype": "application/json", "partitionkey": "k", "traceparent": "t"}


@pytest.mark.parametrize("attributes", [VALID_ATTRIBUTES, {"type": "t.v1", "source": "/s", "id": "1", "specversion": "1.0"}])
def test_an_event_built_without_the_sdk_constructor_is_the_one_it_makes(attributes):
    ours, sdk = build_event(dict(attributes), b'{"a": 1}'), CloudEvent(dict(attributes), b'{"a": 1}')
    assert type(ours) is CloudEvent and ours.get_data() == sdk.get_data() == b'{"a": 1}'
    time = ours.get_attributes().pop("time")
    assert ours.get_attributes() == {name: value for name, value in sdk.get_attributes().items() if name != "time"}
    assert time.tzinfo is not None and (time == MOMENT or "time" not in attributes)


@pytest.mark.parametrize("changes", [
    {"subject": ""}, {"time": MOMENT.replace(tzinfo=None)}, {"specversion": "0.3"}, {"id": ""}, {"source": 7},
    {"Bad-Name": "x"}, {"data": "x"}, {"datacontenttype": ""}, {"dataschema": ""},
])
def test_attributes_the_sdk_refuses_are_refused_naming_the_same_fields(changes):
    with pytest.raises(CloudEventValidationError) as sdk:
        CloudEvent({**VALID_ATTRIBUTES, **changes}, None)
    with pytest.raises(InvalidEvent) as ours:
        build_event({**VALID_ATTRIBUTES, **changes}, None)
    assert set(ours.value.fields) == set(sdk.value.errors) == set(changes)
