"""The handler contract: decorators, typed data with field errors, what a handler may return, new events."""

from __future__ import annotations

import types

import pytest
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

from smartcity.runtime import Event, InvalidEvent, cloudevent_function, http_function, new_event
from smartcity.runtime.function import CloudEventHandler, HttpHandler, handler_of


class Speed(BaseModel):
    sensor: str
    kmh: float


def _ce(data) -> CloudEvent:
    return CloudEvent({"type": "city.test.v1", "source": "/t", "id": "1"}, data)


def _handler(function) -> CloudEventHandler:
    return handler_of(types.SimpleNamespace(handle=function, __file__="handler.py"))


def test_data_is_validated_into_the_model():
    @cloudevent_function(data=Speed)
    def handle(event: Event[Speed], context):
        return None

    event = _handler(handle).typed(_ce({"sensor": "s1", "kmh": "12.5"}))
    assert event.data == Speed(sensor="s1", kmh=12.5)
    assert (event.id, event.type, event.source) == ("1", "city.test.v1", "/t")


def test_invalid_data_names_each_field():
    @cloudevent_function(data=Speed)
    def handle(event, context):
        return None

    with pytest.raises(InvalidEvent) as caught:
        _handler(handle).typed(_ce({"kmh": "fast"}))
    assert set(caught.value.fields) == {"data.sensor", "data.kmh"}
    with pytest.raises(InvalidEvent) as caught:
        _handler(handle).typed(_ce(None))
    assert "data" in caught.value.fields


def test_a_single_handler_is_called_per_event_and_a_batch_handler_once():
    calls = []

    @cloudevent_function(data=None)
    def one(event, context):
        calls.append(("one", event.id))
        return [new_event("city.test.out.v1", "/t", {"of": event.id})]

    @cloudevent_function(data=None, batch=10)
    def many(events, context):
        calls.append(("many", [e.id for e in events]))
        return new_event("city.test.out.v1", "/t", {"n": len(events)})

    events = [Event(_ce(1), 1), Event(CloudEvent({"type": "t.v1", "source": "/t", "id": "2"}, 2), 2)]
    assert len(_handler(one).call(events, None)) == 2
    assert len(_handler(many).call(events, None)) == 1
    assert calls == [("one", "1"), ("one", "2"), ("many", ["1", "2"])]


def test_a_handler_returning_something_else_than_events_is_an_error_naming_it():
    @cloudevent_function()
    def handle(event, context):
        return {"not": "an event"}

    with pytest.raises(TypeError, match="handle returned dict"):
        _handler(handle).call([Event(_ce(1), 1)], None)


def test_an_idempotent_handler_skips_the_dedup_marks_and_may_not_return_events():
    from smartcity.backends.cache import open_cache
    from smartcity.runtime.dedup import Deduplicator

    @cloudevent_function(batch=10, idempotent=True)
    def store(events, context):
        return None

    @cloudevent_function(idempotent=True)
    def publishing(event, context):
        return new_event("city.test.out.v1", "/t", {"of": event.id})

    events = [Event(_ce(1), 1), Event(_ce(1), 1)]
    assert _handler(store).idempotent and _handler(store).call(events, None) == []
    with pytest.raises(TypeError, match="publishing is marked idempotent and returned events"):
        _handler(publishing).call(events[:1], None)
    cache = open_cache("memory://")
    skipping, marking = (Deduplicator(lambda: cache, name, 60, enabled=enabled)
                         for name, enabled in (("store", False), ("other", True)))
    for dedup in (skipping, marking):
        dedup.mark(events[:1])
    assert skipping.unseen(events) == events  # nothing marked, nothing dropped: the store keeps it once
    assert marking.unseen(events) == []
    assert cache.get_many([skipping.key(events[0]), marking.key(events[0])]) == [None, b"1"]


def test_a_module_must_mark_exactly_one_handler():
    @http_function
    def create_app(context):
        return None

    assert isinstance(handler_of(types.SimpleNamespace(create_app=create_app, __file__="h.py")), HttpHandler)
    with pytest.raises(LookupError, match="found 0"):
        handler_of(types.SimpleNamespace(__file__="h.py"))


def test_decorator_arguments_are_checked():
    with pytest.raises(ValueError):
        cloudevent_function(batch=0)
    with pytest.raises(TypeError):
        cloudevent_function(data=dict)


def test_new_events_have_versioned_types_and_json_data():
    event = new_event("city.traffic.flow.observed.v1", "/functions/x", Speed(sensor="s", kmh=1), id="a:b",
                      partitionkey="s")
    assert event.get_data() == {"sensor": "s", "kmh": 1.0}
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("partitionkey") == "s"
    with pytest.raises(InvalidEvent) as caught:
        new_event("TrafficObserved", "/functions/x", {})
    assert "type" in caught.value.fields
