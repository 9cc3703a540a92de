"""api-traffic through the real gateway, over the sample city (SQLite, memory cache): every route, its errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartcity.api.sample_city import TRAFFIC_STEPS, sample_client
from smartcity.events.common import city

SEGMENT_A = "urn:ngsi-ld:RoadSegment:A"
S2 = "urn:ngsi-ld:TrafficFlowObserved:s2"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-traffic")) as api:
        yield api


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if field:
        assert field in [error["field"] for error in body["errors"]], body
    return body


def test_sensors_list_their_latest_state(api):
    _, client = api
    response = client.get("/v1/traffic/sensors")
    assert response.status_code == 200
    sensors = response.json()["items"]
    assert [s["sensor_id"].rsplit(":", 1)[1] for s in sensors] == ["s1", "s2", "s3", "s4", "s5", "s6"]
    s2 = sensors[1]
    assert (s2["segment_id"], s2["lane_id"], s2["congested"], s2["average_speed_kmh"]) == (SEGMENT_A, 1, True, 10.0)
    assert response.headers["cache-control"] == "private, max-age=5"


@pytest.mark.parametrize(
    "params, expected",
    [({"zone": "Z11"}, ["s1", "s2"]), ({"congested": "true"}, ["s2"]), ({"segment_id": "urn:ngsi-ld:RoadSegment:C"}, ["s5", "s6"])],
)
def test_sensors_filter(api, params, expected):
    _, client = api
    items = client.get("/v1/traffic/sensors", params=params).json()["items"]
    assert [s["sensor_id"].rsplit(":", 1)[1] for s in items] == expected


def test_sensors_page_with_a_cursor(api):
    _, client = api
    first = client.get("/v1/traffic/sensors", params={"limit": 4}).json()
    second = client.get("/v1/traffic/sensors", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 4 and len(second["items"]) == 2 and second["next_cursor"] is None
    problem(client.get("/v1/traffic/sensors", params={"cursor": first["next_cursor"], "zone": "Z11"}), 400, "query.cursor")
    problem(client.get("/v1/traffic/sensors", params={"cursor": "garbage"}), 400, "query.cursor")
    problem(client.get("/v1/traffic/sensors", params={"limit": 501}), 422, "query.limit")
    problem(client.get("/v1/traffic/sensors", params={"zone": "Z1"}), 422, "query.zone")


def test_one_sensor(api):
    _, client = api
    assert client.get(f"/v1/traffic/sensors/{S2}").json()["congested"] is True
    problem(client.get("/v1/traffic/sensors/urn:ngsi-ld:TrafficFlowObserved:nowhere"), 404)


def test_segments_are_made_of_their_lanes(api):
    _, client = api
    segments = {s["segment_id"][-1]: s for s in client.get("/v1/traffic/segments").json()["items"]}
    assert set(segments) == {"A", "B", "C"}
    a = segments["A"]
    assert (a["sensors"], a["congested_lanes"], a["congested"], a["intensity_per_hour"]) == (2, 1, True, 240.0)
    assert a["occupancy"] == pytest.approx(0.4)
    assert a["average_speed_kmh"] == pytest.approx(30.0)  # (50 * 120 + 10 * 120) / 240
    assert segments["C"]["average_speed_kmh"] == pytest.approx(65.0)
    assert [s["segment_id"][-1] for s in client.get("/v1/traffic/segments", params={"congested": "false"}).json()["items"]] == ["B", "C"]
    assert client.get(f"/v1/traffic/segments/{SEGMENT_A}").json() == a
    problem(client.get("/v1/traffic/segments/urn:ngsi-ld:RoadSegment:Z"), 404)


def test_history_in_buckets(api):
    sample_api, client = api
    sample = sample_api.sample
    params = {"from": iso(sample.traffic_start), "to": iso(sample.now + timedelta(seconds=1)), "bucket": "5m"}
    body = client.get("/v1/traffic/history", params={**params, "limit": 500}).json()
    assert len(body["items"]) == TRAFFIC_STEPS  # one observation per sensor per 5-minute bucket
    assert {item["samples"] for item in body["items"]} == {6}
    assert {item["vehicles"] for item in body["items"]} == {60}
    s2 = client.get("/v1/traffic/history", params={**params, "sensor_id": S2, "limit": 500}).json()["items"]
    congested = [item["congested_share"] for item in s2]
    assert congested == [1.0 if step % 3 == 0 or step == TRAFFIC_STEPS - 1 else 0.0 for step in range(TRAFFIC_STEPS)]
    zone = client.get("/v1/traffic/history", params={**params, "zone": "Z33", "bucket": "1d"}).json()["items"]
    assert sum(item["samples"] for item in zone) == 2 * TRAFFIC_STEPS
    assert all(item["average_speed_kmh"] == pytest.approx(65.0) for item in zone)


def test_history_pages_follow_one_another(api):
    sample_api, client = api
    sample = sample_api.sample
    params = {"from": iso(sample.traffic_start), "to": iso(sample.now + timedelta(seconds=1)), "bucket": "5m", "limit": 10}
    starts, cursor = [], None
    while True:
        body = client.get("/v1/traffic/history", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        starts += [item["bucket_start"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(starts) == TRAFFIC_STEPS and starts == sorted(set(starts))


def test_history_errors(api):
    sample_api, client = api
    now = sample_api.sample.now
    problem(client.get("/v1/traffic/history", params={"sensor_id": S2, "zone": "Z11"}), 400, "query.sensor_id")
    problem(client.get("/v1/traffic/history", params={"from": iso(now - timedelta(days=30)), "bucket": "5m"}), 400, "query.bucket")
    problem(client.get("/v1/traffic/history", params={"from": iso(now), "to": iso(now - timedelta(hours=1))}), 400, "query.from")
    problem(client.get("/v1/traffic/history", params={"from": "2026-01-01T00:00:00"}), 422, "query.from")  # no timezone
    problem(client.get("/v1/traffic/history", params={"bucket": "2m"}), 422, "query.bucket")


def test_congestion_over_a_bounding_box(api):
    _, client = api
    box = city()
    whole = client.get("/v1/traffic/congestion", params={"bbox": f"{box.west},{box.south},{box.east},{box.north}"}).json()
    assert (whole["sensors"], whole["congested_sensors"]) == (6, 1)
    assert whole["congested_share"] == pytest.approx(1 / 6)
    assert [segment["segment_id"] for segment in whole["congested_segments"]] == [SEGMENT_A]
    north_east = client.get("/v1/traffic/congestion", params={"bbox": f"{(box.west + box.east) / 2},{(box.south + box.north) / 2},{box.east},{box.north}"}).json()
    assert (north_east["sensors"], north_east["congested_sensors"], north_east["congested_segments"]) == (4, 0, [])


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "7,50,6,51", "6,51,7,50", "6,-91,7,50", "nan,50,7,51"])
def test_a_bad_bounding_box_is_a_400(api, bbox):
    _, client = api
    problem(client.get("/v1/traffic/congestion", params={"bbox": bbox}), 400, "query.bbox")


def test_reads_carry_an_etag_and_answer_304(api):
    _, client = api
    first = client.get("/v1/traffic/segments")
    again = client.get("/v1/traffic/segments", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/v1/traffic/segments", headers={"If-None-Match": '"stale"'}).status_code == 200
