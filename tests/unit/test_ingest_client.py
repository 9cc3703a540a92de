"""The one ingest client (smartcity.ingest_client), against ingest answers made by httpx's mock transport: where it
posts, batches, retries with backoff, credentials, refusals by reading, problem+json in its errors; and the
simulator's HTTP sink over it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from smartcity.events import STREAMS
from smartcity.ingest_client import IngestClient, IngestUnavailable, refusals
from smartcity.simulator.sinks import HttpSink, SinkError
from tests.stream_functions import reading

PROBLEM = "application/problem+json"


def client_of(answer: Callable[[httpx.Request], httpx.Response], **options) -> tuple[IngestClient, list[float]]:
    """A client over ``answer``, and the waits it slept (none really slept)."""
    waits: list[float] = []
    client = IngestClient("http://gw", httpx.Client(transport=httpx.MockTransport(answer)), sleep=waits.append,
                          **options)
    return client, waits


def answers(*responses: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """An ingest function giving ``responses`` in turn, and the requests it got."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return answer, seen


def test_urls_are_a_gateways_route_a_topic_template_or_one_functions():
    assert IngestClient("http://gw:8080/").url_of("bike-share") == "http://gw:8080/function/ingest-bike-share"
    template = IngestClient("http://ingest-{topic}.smartcity.svc.cluster.local")
    assert template.url_of("weather") == "http://ingest-weather.smartcity.svc.cluster.local"
    one = IngestClient("http://testserver/function/ingest-parking")
    assert one.url_of("parking") == "http://testserver/function/ingest-parking"


def test_refusals_are_grouped_by_reading():
    problem = {"status": 422, "errors": [{"field": "[0].location", "reason": "Field required"},
                                         {"field": "[2].speed", "reason": "too fast"},
                                         {"field": "[2].heading", "reason": "negative"}, {"field": "[3]", "reason": "x"}]}
    assert refusals(problem) == {0: {"location": "Field required"}, 2: {"speed": "too fast", "heading": "negative"},
                                 3: {"<reading>": "x"}}


def test_large_batches_go_in_several_requests_with_the_key_and_refusals_keep_their_index():
    sizes: list[int] = []

    def ingest(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "k1" and request.headers["content-type"] == "application/json"
        readings = json.loads(request.content)
        sizes.append(len(readings))
        bad = [i for i, reading in enumerate(readings) if reading["n"] == 1500]
        if not bad:
            return httpx.Response(202, json={"accepted": len(readings)})
        return httpx.Response(422, json={"errors": [{"field": f"[{bad[0]}].n", "reason": "not this one"}]})

    client, _ = client_of(ingest, api_key="k1")
    assert client.send("weather", [{"n": n} for n in range(2500)]) == {1500: {"n": "not this one"}}
    assert sizes == [1000, 1000, 500]


def test_server_errors_and_no_answer_are_retried_with_growing_waits_then_taken():
    answer, seen = answers(httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(202))
    client, waits = client_of(answer)
    assert client.send("parking", [{"n": 1}]) == {} and len(seen) == 4
    assert waits == [0.5, 1.0, 2.0]

    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(202)

    client, waits = client_of(down)
    assert client.send("parking", [{"n": 1}]) == {} and waits == [0.5, 1.0]


def test_the_rate_limit_is_waited_out_as_retry_after_says():
    limited = httpx.Response(429, headers={"retry-after": "3"}, json={"title": "Too Many Requests"})
    answer, seen = answers(limited, limited, httpx.Response(202))
    client, waits = client_of(answer)
    assert client.send("parking", [{"n": 1}]) == {} and waits == [3.0, 3.0] and len(seen) == 3


def test_after_the_last_retry_the_function_is_unavailable_with_the_problems_words():
    problem = httpx.Response(503, headers={"content-type": PROBLEM},
                             json={"title": "Service Unavailable", "detail": "the bus is down"})
    answer, seen = answers(problem)
    client, waits = client_of(answer, retries=2)
    with pytest.raises(IngestUnavailable, match=r"503 Service Unavailable - the bus is down \(3 tries\)"):
        client.send("parking", [{"n": 1}])
    assert len(seen) == 3 and len(waits) == 2


def test_refused_credentials_or_route_are_unavailable_at_once():
    answer, seen = answers(httpx.Response(401, json={"title": "Unauthorized", "detail": "no X-API-Key"}))
    client, waits = client_of(answer)
    with pytest.raises(IngestUnavailable, match="401 Unauthorized - no X-API-Key"):
        client.send("parking", [{"n": 1}])
    assert len(seen) == 1 and waits == []


def test_a_request_refused_as_a_whole_refuses_each_reading_with_the_reason():
    too_large = httpx.Response(413, json={"title": "Content Too Large", "detail": "at most 1 MiB"})
    client, _ = client_of(answers(too_large)[0])
    assert client.send("parking", [{"n": 1}, {"n": 2}]) == {
        0: {"<request>": "413 Content Too Large - at most 1 MiB"}, 1: {"<request>": "413 Content Too Large - at most 1 MiB"}}


def test_csv_bodies_put_the_location_in_lon_and_lat_columns():
    answer, seen = answers(httpx.Response(202))
    client, _ = client_of(answer, body_format="csv")
    client.send("parking", [{"id": "p1", "location": {"type": "Point", "coordinates": [6.9, 50.9]}, "free": None,
                             "open": True}])
    assert seen[0].headers["content-type"] == "text/csv"
    assert seen[0].content.decode() == "id,free,open,lon,lat\np1,,true,6.9,50.9\n"
    with pytest.raises(ValueError, match="json, csv"):
        IngestClient("http://gw", body_format="xml")


def test_the_simulators_sink_names_the_refused_readings_and_an_unavailable_function():
    stream = STREAMS["parking"]
    event = stream.model.model_validate(reading("parking"))
    refused = httpx.Response(422, headers={"content-type": PROBLEM},
                             json={"title": "Unprocessable", "errors": [{"field": "[0].occupancy", "reason": "bad"}]})
    sink = HttpSink("http://testserver/function/ingest-{topic}", client=httpx.Client(
        transport=httpx.MockTransport(answers(refused)[0])))
    with pytest.raises(SinkError, match=r"1 of 1 parking readings refused: \[0\] \{'occupancy': 'bad'\}"):
        sink.send(stream, [event])
    missing = httpx.Response(404, json={"title": "Not Found", "detail": "no function ingest-parking"})
    sink = HttpSink("http://testserver/function/ingest-{topic}",
                    client=httpx.Client(transport=httpx.MockTransport(answers(missing)[0])))
    with pytest.raises(SinkError, match="404 Not Found - no function ingest-parking"):
        sink.send(stream, [event])
