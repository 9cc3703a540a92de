"""api-mobility through the real gateway, over the sample city: bikes, parking, taxi demand, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api_samples.gateway import query_time, sample_client


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-mobility")) as api:
        yield api


def local_ids(items, key: str) -> list[str]:
    return [item[key].rsplit(":", 1)[1] for item in items]


def test_bike_station_availability(api):
    _, client = api
    stations = client.get("/v1/mobility/bike-stations").json()["items"]
    assert local_ids(stations, "station_id") == ["b1", "b2", "b3"]
    assert [(s["bikes_available"], s["docks_available"], s["capacity"]) for s in stations] == [(0, 20, 20), (5, 15, 20), (12, 8, 20)]
    assert local_ids(client.get("/v1/mobility/bike-stations", params={"min_bikes": 5}).json()["items"], "station_id") == ["b2", "b3"]
    assert local_ids(client.get("/v1/mobility/bike-stations", params={"zone": "Z22"}).json()["items"], "station_id") == ["b2"]
    one = client.get("/v1/mobility/bike-stations/urn:ngsi-ld:BikeHireDockingStation:b3").json()
    assert one["bikes_available"] == 12
    assert client.get("/v1/mobility/bike-stations/urn:ngsi-ld:BikeHireDockingStation:b9").status_code == 404
    assert client.get("/v1/mobility/bike-stations", params={"min_bikes": -1}).status_code == 422


def test_parking_availability(api):
    _, client = api
    parkings = client.get("/v1/mobility/parking").json()["items"]
    assert [(p["spots_available"], p["status"]) for p in parkings] == [(5, "almostFull"), (60, "open")]
    assert local_ids(client.get("/v1/mobility/parking", params={"min_spots": 10}).json()["items"], "parking_id") == ["p2"]
    assert client.get("/v1/mobility/parking/urn:ngsi-ld:OffStreetParking:p1").json()["occupancy"] == pytest.approx(0.95)
    assert client.get("/v1/mobility/parking/urn:ngsi-ld:OffStreetParking:p9").status_code == 404


def test_taxi_demand_by_pickup_zone(api):
    _, client = api
    zones = {row["zone"]: row for row in client.get("/v1/mobility/taxi-demand").json()["zones"]}
    assert {zone: (row["trips"], row["completed_trips"]) for zone, row in zones.items()} == {
        "Z11": (2, 2), "Z22": (1, 1), "Z33": (1, 0)}
    assert zones["Z11"]["average_fare"] == pytest.approx(10.25)
    assert zones["Z33"]["average_fare"] is None
    only = client.get("/v1/mobility/taxi-demand", params={"zone": "Z22"}).json()["zones"]
    assert [row["zone"] for row in only] == ["Z22"]


def test_taxi_demand_range_is_checked(api):
    sample_api, client = api
    now = sample_api.sample.now
    before = client.get("/v1/mobility/taxi-demand", params={"from": query_time(now - timedelta(hours=3)), "to": query_time(now - timedelta(hours=2))})
    assert before.json()["zones"] == []
    bad = client.get("/v1/mobility/taxi-demand", params={"from": query_time(now), "to": query_time(now)})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.from"


def test_the_newest_mobility_index_of_each_zone(api):
    _, client = api
    zones = client.get("/v1/mobility/index").json()["zones"]
    assert [z["zone"] for z in zones] == ["Z11", "Z22"]
    z11, z22 = zones
    # Z11: 30 km/h at 0.15 occupancy (congestion 0.5 * 0.4 + 0.5 * 0.5), buses 120 s late, no bike of 20 docks,
    # 95 of 100 spots taken; no taxi waiting, no air station: the index weighs the four scores present only.
    assert [z11[f"{name}_score"] for name in ("traffic", "transit", "bikes", "taxi", "air")] == [
        pytest.approx(0.55), pytest.approx(0.8), 0.0, None, None]
    assert z11["parking_score"] == pytest.approx(0.05)
    assert z11["mobility_index"] == pytest.approx(100 * (0.30 * 0.55 + 0.20 * 0.8 + 0.10 * 0.0 + 0.15 * 0.05) / 0.75, abs=5e-3)
    # Z22: 35 km/h at 0.10, buses on time, 5 bikes of 20, 40 spots of 100 taken, CAQI 30
    assert z22["mobility_index"] == pytest.approx(
        100 * (0.30 * (1 - (0.5 * 0.3 + 0.5 / 3)) + 0.20 * 1.0 + 0.10 * 0.25 + 0.15 * 0.6 + 0.15 * 0.7) / 0.90, abs=5e-3)
    assert all(0 <= z[f"{name}_score"] <= 1 for z in zones for name in ("traffic", "transit", "bikes", "parking"))
    assert [z["zone"] for z in client.get("/v1/mobility/index", params={"zone": "Z22"}).json()["zones"]] == ["Z22"]
    assert client.get("/v1/mobility/index", params={"zone": "Z33"}).json()["zones"] == []


def test_a_zone_mobility_index_window_by_window(api):
    sample_api, client = api
    now = sample_api.sample.now
    params = {"zone": "Z11", "from": query_time(now - timedelta(hours=1)), "to": query_time(now + timedelta(minutes=5)), "limit": 4}
    first = client.get("/v1/mobility/index/history", params=params).json()
    second = client.get("/v1/mobility/index/history", params={**params, "cursor": first["next_cursor"]}).json()
    values = [w["mobility_index"] for w in first["items"] + second["items"]]
    # oldest first; each window back the buses were a minute later: transit 0.1 lower, the index 100 * 0.2 * 0.1 / 0.75
    newest = 100 * (0.30 * 0.55 + 0.20 * 0.8 + 0.15 * 0.05) / 0.75
    assert values == pytest.approx([newest - back * 100 * 0.2 * 0.1 / 0.75 for back in range(5, -1, -1)], abs=1e-2)
    assert second["next_cursor"] is None
    assert client.get("/v1/mobility/index/history", params={"from": params["from"]}).status_code == 422  # zone needed
    assert client.get("/v1/mobility/index/history", params={**params, "cursor": first["next_cursor"], "zone": "Z22"}).status_code == 400
    # without `from`/`to` (the last hour, ending now) the cursor still continues the listing on the next page
    first = client.get("/v1/mobility/index/history", params={"zone": "Z11", "limit": 1}).json()
    second = client.get("/v1/mobility/index/history", params={"zone": "Z11", "limit": 1, "cursor": first["next_cursor"]})
    assert second.status_code == 200 and second.json()["items"] != first["items"]
