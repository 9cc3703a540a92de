"""api-incidents through the real gateway, over the sample city: listing, filters, creation, workflow, timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api_samples.gateway import assert_problem, backends_of, sample_client
from smartcity.events import Alert
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.envelope import StoredEvent

S2 = "urn:ngsi-ld:TrafficFlowObserved:s2"
CRASH_1 = "urn:ngsi-ld:Alert:crash-1"
CRASH_2 = "urn:ngsi-ld:Alert:crash-2"
ROADWORKS = {
    "category": "roadWorks", "severity": "low", "description": "Resurfacing, right lane closed",
    "location": {"type": "Point", "coordinates": [6.955, 50.965]},
}


@pytest.fixture
def api(tmp_path):
    """A sample city of its own for each test: a test reads only the state it wrote (the workflow moves cases)."""
    with sample_client(tmp_path, role=None) as api:
        yield api


def test_incidents_reported_by_the_streams_are_listed_newest_first(api):
    sample_api, client = api
    listing = client.get("/v1/incidents", params={"source": "stream"}, headers=sample_api.headers())
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert [i["incident_id"] for i in items] == [CRASH_1, CRASH_2]
    assert [(i["state"], i["severity"], i["zone"]) for i in items] == [("open", "high", "Z11"), ("open", "medium", "Z11")]
    assert items[0]["cleared_at"] is None and items[1]["cleared_at"] is not None


def test_a_reported_incident_shows_its_reports_in_its_timeline(api):
    sample_api, client = api
    incident = client.get(f"/v1/incidents/{CRASH_2}", headers=sample_api.headers()).json()
    assert [entry["action"] for entry in incident["timeline"]] == ["reported", "cleared"]
    assert incident["reported_by"] == "traffic-anomaly-detector"
    assert_problem(client.get("/v1/incidents/urn:ngsi-ld:Alert:nothing", headers=sample_api.headers()), 404)


def test_an_operator_creates_and_moves_an_incident_through_its_workflow(api):
    sample_api, client = api
    operator = sample_api.headers("operator")
    created = client.post("/v1/incidents", json=ROADWORKS, headers=operator)
    assert created.status_code == 201
    incident = created.json()
    assert created.headers["location"] == f"/v1/incidents/{incident['incident_id']}"
    assert (incident["state"], incident["source"], incident["zone"], incident["version"]) == ("open", "api", "Z12", 1)
    path = f"/v1/incidents/{incident['incident_id']}"
    assert "only an acknowledged incident can be resolved" in assert_problem(client.post(f"{path}/resolve", headers=operator), 409)["detail"]
    acknowledged = client.post(f"{path}/acknowledge", json={"note": "crew on the way"}, headers=operator).json()
    assert (acknowledged["state"], acknowledged["version"]) == ("acknowledged", 2)
    assert_problem(client.post(f"{path}/acknowledge", headers=operator), 409)
    resolved = client.post(f"{path}/resolve", json={"note": "lane reopened"}, headers=operator).json()
    assert resolved["state"] == "resolved"
    timeline = client.get(path, headers=sample_api.headers()).json()["timeline"]
    assert [(e["action"], e["state"], e["note"]) for e in timeline] == [
        ("created", "open", None), ("acknowledged", "acknowledged", "crew on the way"), ("resolved", "resolved", "lane reopened")]
    assert {e["actor"] for e in timeline} == {"sample-operator"}
    assert [i["incident_id"] for i in client.get("/v1/incidents", params={"state": "resolved"}, headers=sample_api.headers()).json()["items"]] == [incident["incident_id"]]


def test_a_listing_sees_a_write_at_once(api):
    sample_api, client = api
    viewer = sample_api.headers()
    before = client.get("/v1/incidents", params={"source": "api"}, headers=viewer).json()["items"]
    created = client.post("/v1/incidents", json=ROADWORKS, headers=sample_api.headers("operator")).json()
    after = client.get("/v1/incidents", params={"source": "api"}, headers=viewer).json()["items"]
    assert [i["incident_id"] for i in after] == [created["incident_id"]] + [i["incident_id"] for i in before]


def test_a_reported_incident_keeps_its_workflow_state_when_a_new_report_comes(api):
    sample_api, client = api
    operator = sample_api.headers("operator")
    assert client.post(f"/v1/incidents/{CRASH_1}/acknowledge", headers=operator).json()["state"] == "acknowledged"
    backends = backends_of(sample_api.gateway)
    latest = client.get(f"/v1/incidents/{CRASH_1}", headers=operator).json()
    report = Alert.model_validate({**_report_of(backends, CRASH_1), "severity": "critical",
                                   "dateObserved": sample_api.sample.now + timedelta(minutes=1)})
    DocumentWriter(backends["documents"]).write([StoredEvent("incidents", "late-report", "/tests", report)])
    resolved = client.post(f"/v1/incidents/{CRASH_1}/resolve", headers=operator).json()
    assert (resolved["severity"], resolved["state"], resolved["version"]) == ("critical", "resolved", latest["version"] + 1)
    assert [e["action"] for e in resolved["timeline"]] == ["reported", "acknowledged", "resolved", "reported"]


def _report_of(backends, incident_id: str) -> dict:
    document = backends["documents"].get("incidents", incident_id)
    return {name: value for name, value in document.items() if name in Alert.model_fields}


def test_filters_and_pages(api):
    sample_api, client = api
    viewer = sample_api.headers()
    everything = client.get("/v1/incidents", params={"limit": 500}, headers=viewer).json()["items"]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/incidents", params={"limit": 1, **({"cursor": cursor} if cursor else {})}, headers=viewer).json()
        seen += [i["incident_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["incident_id"] for i in everything]
    assert client.get("/v1/incidents", params={"severity": "high", "zone": "Z33"}, headers=viewer).json()["items"] == []
    assert_problem(client.get("/v1/incidents", params={"state": "closed"}, headers=viewer), 422, "query.state")
    assert_problem(client.get("/v1/incidents", params={"since": "not-a-date"}, headers=viewer), 422, "query.since")


def test_a_bad_incident_names_every_bad_field(api):
    sample_api, client = api
    bad = {**ROADWORKS, "category": "meteor", "description": "", "location": {"type": "Point", "coordinates": [1.0, 50.965]}}
    response = client.post("/v1/incidents", json={**bad, "colour": "red"}, headers=sample_api.headers("operator"))
    assert_problem(response, 422)
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"body.category", "body.description", "body.location.coordinates", "body.colour"}
    assert_problem(client.post("/v1/incidents/urn:ngsi-ld:Alert:nothing/acknowledge", headers=sample_api.headers("operator")), 404)
    assert_problem(client.post(f"/v1/incidents/{CRASH_2}/acknowledge", json={"note": "x" * 2001}, headers=sample_api.headers("operator")), 422, "body.note")


def test_only_an_admin_deletes_and_only_cases_created_through_the_api(api):
    sample_api, client = api
    created = client.post("/v1/incidents", json=ROADWORKS, headers=sample_api.headers("operator")).json()
    path = f"/v1/incidents/{created['incident_id']}"
    assert_problem(client.delete(path, headers=sample_api.headers("operator")), 403)
    assert client.delete(path, headers=sample_api.headers("admin")).status_code == 204
    assert_problem(client.get(path, headers=sample_api.headers()), 404)
    assert_problem(client.delete(f"/v1/incidents/{CRASH_2}", headers=sample_api.headers("admin")), 409)


def _scored(database, now):
    """Three windows of sensor s2 scored by two detectors: one flagged by each, one usual."""
    from models.anomaly.serving import alert_id, store_scores

    rows = []
    for minutes, model, score in ((10, "isolation-forest", 0.997), (10, "zscore", 0.42), (5, "isolation-forest", 0.3),
                                  (0, "autoencoder", 0.9995)):
        start = now - timedelta(minutes=minutes)
        flagged = score >= 0.99
        rows.append({"entity_id": S2, "window_start": start, "model": model, "target": "anomaly-sensor",
                     "window_end": start + timedelta(minutes=5), "model_version": "v1", "score": score,
                     "basis": "series", "contributions": '{"speed_residual":0.7,"occupancy_level":0.3}',
                     "flagged": flagged, "alert_id": alert_id(S2, start, model) if flagged else None, "sensor_id": S2,
                     "segment_id": "urn:ngsi-ld:RoadSegment:A", "zone_id": "Z11", "lon": 6.95, "lat": 50.965,
                     "scored_at": now})
    store_scores(database, rows)
    return rows


def test_anomalies_carry_model_score_and_contributions_and_page(api):
    from datetime import datetime, timezone

    sample_api, client = api
    viewer = sample_api.headers()
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = _scored(backends_of(sample_api.gateway)["database"], now)
    span = {"from": (now - timedelta(minutes=30)).isoformat(), "to": (now + timedelta(minutes=5)).isoformat()}

    flagged = client.get("/v1/incidents/anomalies", params=span, headers=viewer).json()["items"]
    assert [(a["model"], a["score"], a["flagged"]) for a in flagged] == [
        ("autoencoder", 0.9995, True), ("isolation-forest", 0.997, True)]
    first = flagged[0]
    assert first["contributions"] == {"speed_residual": 0.7, "occupancy_level": 0.3}
    assert (first["entity_id"], first["zone"], first["model_version"], first["basis"]) == (S2, "Z11", "v1", "series")
    assert first["incident_id"] == rows[-1]["alert_id"]

    everything = client.get("/v1/incidents/anomalies", params={**span, "min_score": 0}, headers=viewer).json()["items"]
    assert [(a["model"], a["incident_id"] is None) for a in everything] == [
        ("autoencoder", False), ("isolation-forest", True), ("zscore", True), ("isolation-forest", False)]
    one_model = client.get("/v1/incidents/anomalies", params={**span, "min_score": 0, "model": "isolation-forest"},
                           headers=viewer).json()["items"]
    assert [a["score"] for a in one_model] == [0.3, 0.997]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/incidents/anomalies", params={**span, "min_score": 0, "limit": 1,
                                                             **({"cursor": cursor} if cursor else {})}, headers=viewer).json()
        seen += [(a["window_start"], a["model"]) for a in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [(a["window_start"], a["model"]) for a in everything]
    assert client.get("/v1/incidents/anomalies", params={**span, "zone": "Z33"}, headers=viewer).json()["items"] == []
    assert_problem(client.get("/v1/incidents/anomalies", params={**span, "min_score": 2}, headers=viewer), 422,
                   "query.min_score")
    assert_problem(client.get("/v1/incidents/anomalies", headers={}), 401)


def test_hotspots_are_the_current_clusters_as_geojson(api):
    from datetime import datetime, timezone

    from models.anomaly.hotspot_service import store_hotspots
    from models.anomaly.hotspots import HotspotPoint, find_hotspots

    sample_api, client = api
    viewer = sample_api.headers()
    database = backends_of(sample_api.gateway)["database"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    offsets = ((0.0, 0.0), (0.0005, 0.0002), (-0.0003, 0.0004))
    points = [HotspotPoint(f"urn:ngsi-ld:Alert:h{i}", "incident" if i == 0 else "anomaly", 6.952 + dx, 50.964 + dy,
                           now - timedelta(minutes=10 - i)) for i, (dx, dy) in enumerate(offsets)]
    store_hotspots(database, find_hotspots(points), now - timedelta(minutes=1))
    [gone] = store_hotspots(database, [], now - timedelta(seconds=30))  # an earlier cluster that ended
    assert gone.status == "cleared"
    store_hotspots(database, find_hotspots(points), now)

    body = client.get("/v1/incidents/hotspots", headers=viewer).json()
    assert body["type"] == "FeatureCollection"
    [feature] = body["features"]
    properties = feature["properties"]
    assert feature["geometry"]["type"] == "Polygon" and len(feature["geometry"]["coordinates"][0]) == 4
    assert (properties["size"], properties["anomalies"], properties["incidents"]) == (3, 2, 1)
    assert properties["members"] == [p.id for p in points] and feature["id"] == properties["id"]
    assert properties["since"].startswith((now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"))
    assert properties["zone"] == "Z11"
    centroid = client.get("/v1/incidents/hotspots", params={"geometry": "centroid"}, headers=viewer).json()
    assert centroid["features"][0]["geometry"] == {"type": "Point", "coordinates": list(properties["centroid"])}
    assert client.get("/v1/incidents/hotspots", params={"zone": "Z33"}, headers=viewer).json()["features"] == []
    assert_problem(client.get("/v1/incidents/hotspots", params={"geometry": "hull"}, headers=viewer), 422,
                   "query.geometry")
