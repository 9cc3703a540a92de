"""dead-letter-archive, loaded through the real loader, over an embedded document store."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cloudevents.core.v1.event import CloudEvent

from smartcity.errors import problem
from smartcity.runtime.bindings import error_data, with_extensions
from smartcity.runtime.events import InvalidEvent
from smartcity.runtime.loader import load_stack
from smartcity.runtime.runner import FunctionRunner
from tests.fixtures.functions.helpers import embedded_settings

STACK = Path(__file__).resolve().parents[2] / "stack.yml"


# What the trigger writes: the problem document the function's HTTP route would have answered.
FAILED = problem(500, "OperationalError: database is down", instance="/function/store-traffic",
                 function="store-traffic", attempts=4).model_dump(mode="json")
INVALID = InvalidEvent("invalid event data", {"data.speed": "Input should be a valid number"}).as_problem(
    instance="/function/store-traffic").model_dump(mode="json")


def _dead_letter(event_id: str, data, code: int = 500) -> CloudEvent:
    event = CloudEvent({"type": "city.traffic.flow.observed.v1", "source": "/sim", "id": event_id}, data)
    return with_extensions(event, knativeerrorcode=str(code), knativeerrordest="/function/store-traffic",
                           knativeerrordata=error_data(FAILED if code == 500 else INVALID))


def test_archives_each_dead_letter_once_with_its_decoded_error(tmp_path):
    [function] = load_stack(STACK, embedded_settings(tmp_path), ["dead-letter-archive"])
    runner = FunctionRunner(function)
    events = [_dead_letter("e1", {"speed": 12}), _dead_letter("e2", b"\x00\xffraw", code=400)]

    runner.run([runner.typed(event) for event in events])
    runner.run([runner.typed(event) for event in events])  # a redelivery adds nothing

    store = function.context.documents
    assert store.count("dead_letters") == 2
    [first] = store.find("dead_letters", {"event.id": "e1"})
    assert first["function"] == "store-traffic"
    assert first["code"] == 500
    assert first["error"] == FAILED
    assert first["data"] == {"speed": 12}
    assert first["event"]["type"] == "city.traffic.flow.observed.v1"
    assert "knativeerrordata" not in first["event"]
    [second] = store.find("dead_letters", {"event.id": "e2"})
    assert second["code"] == 400 and second["error"]["errors"] == [
        {"field": "data.speed", "reason": "Input should be a valid number"}]
    assert base64.b64decode(second["data"]["base64"]) == b"\x00\xffraw"


def test_keeps_error_data_that_is_not_json_as_text(tmp_path):
    [function] = load_stack(STACK, embedded_settings(tmp_path), ["dead-letter-archive"])
    runner = FunctionRunner(function)
    raw = base64.b64encode(b"upstream timeout").decode()
    event = with_extensions(CloudEvent({"type": "x.y.v1", "source": "/s", "id": "e3"}, {"a": 1}),
                            knativeerrorcode="502", knativeerrordata=raw)
    runner.run([runner.typed(event)])
    [document] = function.context.documents.find("dead_letters")
    assert document["error"] == "upstream timeout"
    assert document["function"] is None
    assert json.loads(json.dumps(document)) == document  # plain JSON: no datetime, bytes or tuple left in it


def test_keeps_error_data_cut_at_knatives_limit_as_text(tmp_path):
    [function] = load_stack(STACK, embedded_settings(tmp_path), ["dead-letter-archive"])
    runner = FunctionRunner(function)
    long_problem = problem(400, "invalid event data", {f"data.field{n}": "x" * 40 for n in range(40)})
    encoded = error_data(long_problem.model_dump(mode="json"))  # over 1024 bytes: cut, no longer JSON
    event = with_extensions(CloudEvent({"type": "x.y.v1", "source": "/s", "id": "e4"}, {"a": 1}),
                            knativeerrorcode="400", knativeerrordata=encoded)
    runner.run([runner.typed(event)])
    [document] = function.context.documents.find("dead_letters")
    assert isinstance(document["error"], str) and len(document["error"].encode()) == 1024
    assert document["error"].startswith('{"type": "about:blank", "title": "Bad Request", "status": 400')
