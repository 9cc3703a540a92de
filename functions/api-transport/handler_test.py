"""api-transport through the real gateway, over the sample city: lines, stops, vehicles, delays, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api_samples.gateway import assert_problem, query_time, sample_client


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-transport")) as api:
        yield api


def test_lines_come_from_the_gtfs_routes(api):
    _, client = api
    lines = client.get("/v1/transport/lines").json()["items"]
    assert [(line["line_id"], line["short_name"], line["route_type"]) for line in lines] == [("R1", "1", "bus"), ("R2", "2", "bus")]
    first = client.get("/v1/transport/lines", params={"limit": 1}).json()
    second = client.get("/v1/transport/lines", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [first["items"][0]["line_id"], second["items"][0]["line_id"]] == ["R1", "R2"] and second["next_cursor"] is None


def test_stops_with_the_lines_that_served_them(api):
    _, client = api
    stops = client.get("/v1/transport/stops").json()["items"]
    assert [stop["stop_id"] for stop in stops] == ["S1", "S2", "S3", "S4"]
    assert all(stop["lines"] == ["R1", "R2"] for stop in stops)
    assert [stop["stop_id"] for stop in client.get("/v1/transport/stops", params={"zone": "Z33"}).json()["items"]] == ["S4"]
    assert client.get("/v1/transport/stops", params={"line_id": "R9"}).json()["items"] == []


def test_vehicles_latest_positions(api):
    _, client = api
    vehicles = client.get("/v1/transport/vehicles").json()["items"]
    assert [v["vehicle_id"] for v in vehicles] == ["bus-1", "bus-2", "bus-3"]
    assert [v["vehicle_id"] for v in client.get("/v1/transport/vehicles", params={"line_id": "R1"}).json()["items"]] == ["bus-1", "bus-2"]
    bus = client.get("/v1/transport/vehicles/bus-2").json()
    assert (bus["line_id"], bus["delay_s"], bus["stop_id"]) == ("R1", 400, "S1")  # its last stop of the hour
    assert client.get("/v1/transport/vehicles/bus-9").status_code == 404


def test_delays_per_line_over_the_last_hour(api):
    _, client = api
    lines = {row["line_id"]: row for row in client.get("/v1/transport/delays/lines").json()["items"]}
    assert (lines["R1"]["positions"], lines["R1"]["vehicles"], lines["R1"]["max_delay_s"]) == (120, 2, 400)
    assert lines["R1"]["average_delay_s"] == pytest.approx(215.0)
    assert lines["R1"]["on_time_share"] == pytest.approx(0.5)  # bus-1 30 s late is on time, bus-2 400 s is not
    assert (lines["R2"]["average_delay_s"], lines["R2"]["on_time_share"]) == (-120.0, 0.0)  # 2 minutes early


def test_delays_per_stop(api):
    sample_api, client = api
    now = sample_api.sample.now
    params = {"from": query_time(now - timedelta(minutes=29, seconds=59)), "to": query_time(now + timedelta(seconds=1)), "line_id": "R2"}
    stops = client.get("/v1/transport/delays/stops", params=params).json()["items"]
    assert [(row["stop_id"], row["positions"]) for row in stops] == [("S1", 15), ("S2", 15)]
    assert all(row["average_delay_s"] == -120.0 for row in stops)


def test_range_errors(api):
    sample_api, client = api
    now = sample_api.sample.now
    assert_problem(client.get("/v1/transport/delays/lines", params={"from": query_time(now), "to": query_time(now - timedelta(minutes=1))}), 400, "query.from")
    assert_problem(client.get("/v1/transport/delays/lines", params={"from": query_time(now - timedelta(days=400)), "to": query_time(now)}), 400, "query.from")
    assert_problem(client.get("/v1/transport/delays/stops", params={"to": "yesterday"}), 422, "query.to")
