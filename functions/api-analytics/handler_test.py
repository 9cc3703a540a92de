"""api-analytics through the real gateway, over the sample city: KPIs worked out by hand, comparisons, errors."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.api_samples.gateway import query_time, sample_client
from smartcity.events import AirQualityObserved, PublicTransportVehicle, city


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-analytics")) as api:
        yield api


def window(sample_api, days: int = 3) -> dict[str, str]:
    now = sample_api.sample.now
    return {"from": query_time(now - timedelta(days=days)), "to": query_time(now + timedelta(seconds=1))}


def test_kpis_of_the_whole_city(api):
    sample_api, client = api
    kpis = client.get("/v1/analytics/kpis", params=window(sample_api)).json()
    assert kpis["average_speed_kmh"] == pytest.approx((50 + 10 + 40 + 30 + 60 + 70) / 6, abs=5e-3)
    assert kpis["congestion_hours"] == pytest.approx(9 * 5 / 60)  # segment A: 9 congested 5-minute steps
    assert kpis["transit_punctuality"] == pytest.approx(1 / 3, abs=5e-4)  # bus-1 on time, bus-2 late, bus-3 early
    worst_per_day: dict = {}
    for event in sample_api.sample.of(AirQualityObserved):
        day = event.dateObserved.astimezone(ZoneInfo(city().timezone)).date()
        worst_per_day[day] = max(worst_per_day.get(day, 0), event.airQualityIndex)
    air = kpis["air_quality"]
    assert air["days_observed"] == len(worst_per_day)
    assert air["good_days"] == sum(index < 50 for index in worst_per_day.values())
    assert air["by_level"]["high"] == sum(index >= 75 for index in worst_per_day.values())
    assert sum(air["by_level"].values()) == air["days_observed"]


def test_kpis_of_one_zone(api):
    sample_api, client = api
    kpis = client.get("/v1/analytics/kpis", params={**window(sample_api), "zone": "Z22"}).json()
    assert kpis["zone"] == "Z22"
    assert kpis["average_speed_kmh"] == pytest.approx(35.0)
    assert kpis["congestion_hours"] == 0
    in_zone = [e for e in sample_api.sample.of(PublicTransportVehicle) if e.zone == "Z22"]
    assert kpis["transit_punctuality"] == pytest.approx(sum(-60 <= e.delay <= 300 for e in in_zone) / len(in_zone), abs=5e-4)


def test_kpis_of_an_empty_period_are_unknown_not_zero(api):
    sample_api, client = api
    now = sample_api.sample.now
    kpis = client.get("/v1/analytics/kpis", params={"from": query_time(now - timedelta(days=30)), "to": query_time(now - timedelta(days=20))}).json()
    assert (kpis["average_speed_kmh"], kpis["transit_punctuality"], kpis["congestion_hours"]) == (None, None, 0)
    assert kpis["air_quality"]["days_observed"] == 0


def test_compare_a_period_with_the_one_before(api):
    sample_api, client = api
    now = sample_api.sample.now
    params = {"from": query_time(now - timedelta(hours=1)), "to": query_time(now + timedelta(seconds=1))}
    comparison = client.get("/v1/analytics/compare/periods", params=params).json()
    current, baseline, change = comparison["current"], comparison["baseline"], comparison["change"]
    assert baseline["end"] == current["start"]
    assert change["congestion_hours"] == pytest.approx(current["congestion_hours"] - baseline["congestion_hours"], abs=2e-6)
    assert change["good_air_days"] == current["air_quality"]["good_days"] - baseline["air_quality"]["good_days"]
    assert baseline["transit_punctuality"] is None and change["transit_punctuality"] is None  # no buses before


def test_compare_zones(api):
    sample_api, client = api
    zones = client.get("/v1/analytics/compare/zones", params={**window(sample_api), "zones": ["Z11", "Z33"]}).json()["zones"]
    assert [(z["zone"], round(z["average_speed_kmh"], 6)) for z in zones] == [("Z11", 30.0), ("Z33", 65.0)]


def test_comparison_errors(api):
    sample_api, client = api
    now = sample_api.sample.now

    def refused(path, params, status, field):
        response = client.get(path, params=params)
        assert response.status_code == status, response.text
        assert field in [e["field"] for e in response.json()["errors"]]

    refused("/v1/analytics/compare/zones", {"zones": ["Z11"]}, 422, "query.zones")
    refused("/v1/analytics/compare/zones", {"zones": ["Z11", "Z11"]}, 400, "query.zones")
    refused("/v1/analytics/compare/zones", {"zones": ["Z11", "nowhere"]}, 422, "query.zones.1")
    refused("/v1/analytics/compare/periods", {"baseline_from": query_time(now), "baseline_to": query_time(now - timedelta(days=1))}, 400, "query.baseline_from")
    refused("/v1/analytics/kpis", {"zone": "Z99x"}, 422, "query.zone")
