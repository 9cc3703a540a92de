"""api-traffic through the real gateway, over the sample city (SQLite, memory cache): every route, its errors.

Over 300 lines: a function's tests live in its folder, in one file, and api-traffic has the most routes (sensors,
segments, history at four buckets, anomalies, congestion, forecasts), all read from one sample city."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api_samples.gateway import assert_problem, backends_of, query_time, sample_client
from tests.api_samples.sample_city import SOURCE, TRAFFIC_STEPS
from tests.api_samples.sample_streaming import window_start
from smartcity.api.traffic_history import AggregateHistory, RawHistory
from smartcity.events.common import city
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.envelope import StoredEvent

SEGMENT_A = "urn:ngsi-ld:RoadSegment:A"
S2 = "urn:ngsi-ld:TrafficFlowObserved:s2"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-traffic")) as api:
        yield api


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
    assert_problem(client.get("/v1/traffic/sensors", params={"cursor": first["next_cursor"], "zone": "Z11"}), 400, "query.cursor")
    assert_problem(client.get("/v1/traffic/sensors", params={"cursor": "garbage"}), 400, "query.cursor")
    assert_problem(client.get("/v1/traffic/sensors", params={"limit": 501}), 422, "query.limit")
    assert_problem(client.get("/v1/traffic/sensors", params={"zone": "Z1"}), 422, "query.zone")


def test_one_sensor(api):
    _, client = api
    assert client.get(f"/v1/traffic/sensors/{S2}").json()["congested"] is True
    assert_problem(client.get("/v1/traffic/sensors/urn:ngsi-ld:TrafficFlowObserved:nowhere"), 404)


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
    assert_problem(client.get("/v1/traffic/segments/urn:ngsi-ld:RoadSegment:Z"), 404)


def history(client, sample, **params) -> dict:
    query = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1)), "limit": 500, **params}
    response = client.get("/v1/traffic/history", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    model = AggregateHistory if body["source"] == "aggregates" else RawHistory
    assert model.model_validate(body).model_dump(mode="json") == body  # the fast JSON is the documented answer
    return body


def congested_steps() -> list[bool]:
    return [step % 3 == 0 or step == TRAFFIC_STEPS - 1 for step in range(TRAFFIC_STEPS)]


def test_history_at_5_minutes_reads_the_streaming_windows(api):
    sample_api, client = api
    sample = sample_api.sample
    city_wide = history(client, sample, bucket="5m")
    assert city_wide["source"] == "aggregates" and len(city_wide["items"]) == TRAFFIC_STEPS
    assert city_wide["aggregated_until"] == query_time(window_start(sample.now) + timedelta(minutes=5))
    for item in city_wide["items"]:  # three segments of two lanes, 10 vehicles per lane and window
        assert (item["windows"], item["samples"], item["vehicles"], item["flow_per_hour"]) == (1, 6, 60, 720.0)
        windows = [w for w in sample.segment_windows if query_time(w["window_start"]) == item["bucket_start"]]
        for name in ("speed_p50_kmh", "speed_p85_kmh", "speed_p95_kmh"):  # three segments: their vehicles' mean
            weighted = sum(w[name] * w["flow"] for w in windows) / sum(w["flow"] for w in windows)
            assert item[name] == pytest.approx(weighted, abs=5e-3)
    s2 = history(client, sample, bucket="5m", sensor_id=S2)["items"]
    assert [item["occupancy"] for item in s2] == [0.6 if c else 0.2 for c in congested_steps()]
    # index = (speed deficit against 50 km/h + occupancy against 0.30, at most 1) / 2
    assert [item["congestion_index"] for item in s2] == pytest.approx([0.9 if c else 0.4 + 1 / 3 for c in congested_steps()], abs=5e-4)
    assert {(item["average_speed_kmh"], item["speed_p50_kmh"], item["speed_p95_kmh"]) for item in s2} == {(10.0, 10.0, 10.0)}
    segment = history(client, sample, bucket="5m", segment_id=SEGMENT_A)["items"]
    # lanes at 50 and 10 km/h, 10 vehicles each: the speeds of 20 vehicles
    assert {(i["average_speed_kmh"], i["speed_p50_kmh"], i["speed_p85_kmh"], i["speed_p95_kmh"]) for i in segment} == {(30.0, 30.0, 50.0, 50.0)}
    assert [item["congestion_index"] for item in segment] == pytest.approx([0.7 if c else 0.2 + 1 / 3 for c in congested_steps()], abs=5e-4)


def test_history_re_aggregates_windows_into_wider_buckets(api):
    sample_api, client = api
    sample = sample_api.sample
    hourly = history(client, sample, bucket="1h", segment_id=SEGMENT_A)["items"]
    assert sum(item["windows"] for item in hourly) == TRAFFIC_STEPS
    assert sum(item["vehicles"] for item in hourly) == 20 * TRAFFIC_STEPS
    for item in hourly:
        assert item["bucket_start"].endswith(":00:00Z")
        assert (item["average_speed_kmh"], item["flow_per_hour"]) == (30.0, 240.0)
        # the windows' percentiles weighted by their vehicles: each window of A has the same ones
        assert (item["speed_p50_kmh"], item["speed_p85_kmh"], item["speed_p95_kmh"]) == (30.0, 50.0, 50.0)
        windows = [w for w in sample.segment_windows if w["segment_id"] == SEGMENT_A
                   and query_time(w["window_start"].replace(minute=0)) == item["bucket_start"]]
        assert item["congestion_index"] == pytest.approx(sum(w["congestion_index"] for w in windows) / len(windows), abs=5e-4)
        assert item["congestion_index_max"] == pytest.approx(max(w["congestion_index"] for w in windows))
        assert item["occupancy"] == pytest.approx(sum(w["mean_occupancy"] for w in windows) / len(windows), abs=5e-4)
    quarters = history(client, sample, bucket="15m", segment_id=SEGMENT_A)["items"]
    assert quarters and {(i["speed_p50_kmh"], i["speed_p85_kmh"], i["speed_p95_kmh"]) for i in quarters} == {(30.0, 50.0, 50.0)}
    zone = history(client, sample, bucket="1d", zone="Z33")["items"]
    assert sum(item["samples"] for item in zone) == 2 * TRAFFIC_STEPS
    assert all((item["average_speed_kmh"], item["flow_per_hour"]) == (65.0, 240.0) for item in zone)


def test_history_at_1_minute_reads_the_raw_readings(api):
    sample_api, client = api
    sample = sample_api.sample
    body = history(client, sample, bucket="1m", sensor_id=S2)
    assert body["source"] == "raw" and "aggregated_until" not in body
    items = body["items"]
    assert [item["congested_share"] for item in items] == [1.0 if c else 0.0 for c in congested_steps()]
    assert {(item["samples"], item["vehicles"], item["intensity_per_hour"]) for item in items} == {(1, 10, 120.0)}
    city_raw = history(client, sample, bucket="1m")["items"]
    city_windows = history(client, sample, bucket="5m")["items"]
    assert sum(i["vehicles"] for i in city_raw) == sum(i["vehicles"] for i in city_windows) == 6 * 10 * TRAFFIC_STEPS


def test_history_of_nothing_is_empty(api):
    sample_api, client = api
    body = history(client, sample_api.sample, bucket="15m", sensor_id="urn:ngsi-ld:TrafficFlowObserved:nowhere")
    assert (body["items"], body["next_cursor"]) == ([], None)


@pytest.mark.parametrize("bucket", ["5m", "1m"])
def test_history_pages_follow_one_another(api, bucket):
    sample_api, client = api
    sample = sample_api.sample
    params = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1)), "bucket": bucket, "limit": 10}
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
    assert_problem(client.get("/v1/traffic/history", params={"sensor_id": S2, "zone": "Z11"}), 400, "query.sensor_id")
    assert_problem(client.get("/v1/traffic/history", params={"from": query_time(now - timedelta(days=30)), "bucket": "5m"}), 400, "query.bucket")
    assert_problem(client.get("/v1/traffic/history", params={"from": query_time(now - timedelta(days=2)), "bucket": "1m"}), 400, "query.bucket")
    assert_problem(client.get("/v1/traffic/history", params={"from": query_time(now), "to": query_time(now - timedelta(hours=1))}), 400, "query.from")
    assert_problem(client.get("/v1/traffic/history", params={"from": "2026-01-01T00:00:00"}), 422, "query.from")  # no timezone
    assert_problem(client.get("/v1/traffic/history", params={"bucket": "2m"}), 422, "query.bucket")
    page = client.get("/v1/traffic/history", params={"bucket": "5m", "limit": 1,
                                                      "from": query_time(now - timedelta(hours=1)), "to": query_time(now)}).json()
    assert_problem(client.get("/v1/traffic/history", params={"bucket": "1m", "limit": 1, "cursor": page["next_cursor"],
                                                      "from": query_time(now - timedelta(hours=1)), "to": query_time(now)}), 400, "query.cursor")


def anomalies(client, sample, **params) -> dict:
    query = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1)), **params}
    response = client.get("/v1/traffic/anomalies", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_anomalies_are_the_flagged_windows_with_their_baseline(api):
    sample_api, client = api
    sample = sample_api.sample
    items = anomalies(client, sample)["items"]
    # s2's congested windows (occupancy 0.6) that have ended; the last one is still open
    s2_windows = sorted((w for w in sample.sensor_windows if w["sensor_id"] == S2), key=lambda w: w["window_start"])
    expected = [w["window_start"] for w, c in zip(s2_windows, congested_steps()) if c and w["window_end"] <= sample.now]
    assert len(expected) == 8
    assert [item["window_start"] for item in items] == [query_time(start) for start in reversed(expected)]
    for item in items:
        assert (item["sensor_id"], item["segment_id"], item["zone"], item["metric"]) == (S2, SEGMENT_A, "Z11", "mean_occupancy")
        assert (item["value"], item["baseline_median"], item["baseline_mad"]) == pytest.approx((0.6, 0.2, 0.01))
        assert item["robust_z"] == pytest.approx(0.6745 * 0.4 / 0.01)
        assert item["severity"] == "high" and item["baseline_samples"] >= 7 * 12
        assert item["incident_id"].startswith("urn:ngsi-ld:Alert:anomaly-")
    assert len({item["incident_id"] for item in items}) == 8


@pytest.mark.parametrize("params, count", [
    ({"sensor_id": S2}, 8), ({"sensor_id": "urn:ngsi-ld:TrafficFlowObserved:s1"}, 0), ({"segment_id": SEGMENT_A}, 8),
    ({"zone": "Z11"}, 8), ({"zone": "Z22"}, 0), ({"metric": "mean_occupancy"}, 8), ({"metric": "mean_speed_kmh"}, 0),
    ({"severity": "high"}, 8), ({"severity": "low"}, 0),
])
def test_anomalies_filter(api, params, count):
    sample_api, client = api
    assert len(anomalies(client, sample_api.sample, **params)["items"]) == count


def test_the_cursor_of_a_range_ending_now_continues_it(api):
    # without `to` the range ends now, which has moved by the next page: the cursor must still continue the listing
    sample_api, client = api
    since = query_time(sample_api.sample.now - timedelta(hours=3))
    for path, params in (("/v1/traffic/history", {"bucket": "5m", "limit": 2}),
                         ("/v1/traffic/anomalies", {"from": since, "limit": 1})):
        first = client.get(path, params=params).json()
        assert first["next_cursor"] is not None, path
        second = client.get(path, params={**params, "cursor": first["next_cursor"]})
        assert second.status_code == 200, second.text
        assert second.json()["items"] and second.json()["items"] != first["items"]


def test_anomalies_page_with_a_cursor(api):
    sample_api, client = api
    sample = sample_api.sample
    pages, cursor = [], None
    while True:
        body = anomalies(client, sample, limit=3, **({"cursor": cursor} if cursor else {}))
        pages.append([item["window_start"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 2]
    starts = [start for page in pages for start in page]
    assert starts == sorted(set(starts), reverse=True)


def test_anomalies_errors(api):
    sample_api, client = api
    sample = sample_api.sample
    first = anomalies(client, sample, limit=1)
    params = {"from": query_time(sample.traffic_start), "to": query_time(sample.now)}
    assert_problem(client.get("/v1/traffic/anomalies", params={**params, "sensor_id": S2, "zone": "Z11"}), 400, "query.sensor_id")
    assert_problem(client.get("/v1/traffic/anomalies", params={**params, "metric": "speed"}), 422, "query.metric")
    assert_problem(client.get("/v1/traffic/anomalies", params={**params, "severity": "critical"}), 422, "query.severity")
    assert_problem(client.get("/v1/traffic/anomalies", params={**params, "cursor": first["next_cursor"], "zone": "Z11"}), 400, "query.cursor")
    assert_problem(client.get("/v1/traffic/anomalies", params={"from": params["to"], "to": params["from"]}), 400, "query.from")


def test_an_anomaly_names_the_incident_the_job_reported(api):
    sample_api, client = api
    sample = sample_api.sample
    alert = sample.alerts[0]  # what the job publishes on the incidents topic, stored as the store function does
    DocumentWriter(backends_of(sample_api.gateway)["documents"]).write([StoredEvent("incidents", f"incidents:{alert.id}", SOURCE, alert)])
    item = next(i for i in anomalies(client, sample)["items"] if i["incident_id"] == alert.id)
    incident = client.get(f"/v1/incidents/{item['incident_id']}").json()
    assert (incident["source"], incident["category"], incident["segment_id"]) == ("stream", "trafficJam", SEGMENT_A)
    assert S2 in incident["description"]


def test_congestion_over_a_bounding_box(api):
    _, client = api
    box = city()
    whole = client.get("/v1/traffic/congestion", params={"bbox": f"{box.west},{box.south},{box.east},{box.north}"}).json()
    assert (whole["sensors"], whole["congested_sensors"]) == (6, 1)
    assert whole["congested_share"] == pytest.approx(1 / 6, abs=5e-4)  # 3 decimals: a fraction
    assert [segment["segment_id"] for segment in whole["congested_segments"]] == [SEGMENT_A]
    north_east = client.get("/v1/traffic/congestion", params={"bbox": f"{(box.west + box.east) / 2},{(box.south + box.north) / 2},{box.east},{box.north}"}).json()
    assert (north_east["sensors"], north_east["congested_sensors"], north_east["congested_segments"]) == (4, 0, [])


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "7,50,6,51", "6,51,7,50", "6,-91,7,50", "nan,50,7,51"])
def test_a_bad_bounding_box_is_a_400(api, bbox):
    _, client = api
    assert_problem(client.get("/v1/traffic/congestion", params={"bbox": bbox}), 400, "query.bbox")


def test_reads_carry_an_etag_and_answer_304(api):
    _, client = api
    first = client.get("/v1/traffic/segments")
    again = client.get("/v1/traffic/segments", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/v1/traffic/segments", headers={"If-None-Match": '"stale"'}).status_code == 200


def test_forecast_serves_the_newest_origin_beside_the_baseline_and_accuracy_scores_closed_windows(api):
    from datetime import datetime, timezone

    from models.serving import store_forecasts
    from smartcity.events.derived import TrafficForecast

    sample, client = api
    database = backends_of(sample.gateway)["database"]
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    origins = [now - timedelta(minutes=90), now - timedelta(minutes=60)]
    forecasts = [
        TrafficForecast(target="segment-speed", entity_id=SEGMENT_A, origin=origin, horizon_min=h,
                        target_time=origin + timedelta(minutes=h), p10=20 + i, p50=30 + i, p90=40 + i, model=model,
                        model_version="v1", issued_at=origin + timedelta(minutes=5))
        for i, origin in enumerate(origins) for h in (15, 30, 60) for model in ("xgboost", "historical-average")]
    store_forecasts(database, forecasts)
    database.execute("UPDATE traffic_forecasts SET actual = 33, abs_error = abs(p50 - 33) WHERE origin = :o",
                     {"o": origins[0]})

    body = client.get("/v1/traffic/forecast", params={"segment_id": SEGMENT_A}).json()
    assert body["origin"].startswith(origins[1].strftime("%Y-%m-%dT%H:%M"))
    assert (body["served"]["model"], body["baseline"]["model"]) == ("xgboost", "historical-average")
    assert [(f["horizon_min"], f["p10"], f["p50"], f["p90"]) for f in body["served"]["forecasts"]] == [
        (15, 21, 31, 41), (30, 21, 31, 41), (60, 21, 31, 41)]

    accuracy = client.get("/v1/traffic/forecast/accuracy", params={"hours": 3}).json()
    assert [(h["model"], h["horizon_min"], h["mae"], h["coverage"], h["forecasts"]) for h in accuracy["horizons"]] == [
        (model, h, 3.0, 1.0, 1) for h in (15, 30, 60) for model in ("historical-average", "xgboost")]

    assert_problem(client.get("/v1/traffic/forecast", params={"sensor_id": S2}), 404)
    assert_problem(client.get("/v1/traffic/forecast"), 400, "query.segment_id")
    assert_problem(client.get("/v1/traffic/forecast", params={"segment_id": SEGMENT_A, "metric": "x"}), 422,
                   "query.metric")
