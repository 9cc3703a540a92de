"""api-incidents through the real gateway, over the sample city: listing, filters, creation, workflow, timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartcity.api.sample_city import assert_problem, backends_of, sample_client
from smartcity.events import Alert
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.envelope import StoredEvent

CRASH_1 = "urn:ngsi-ld:Alert:crash-1"
CRASH_2 = "urn:ngsi-ld:Alert:crash-2"
ROADWORKS = {
    "category": "roadWorks", "severity": "low", "description": "Resurfacing, right lane closed",
    "location": {"type": "Point", "coordinates": [6.955, 50.965]},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-incidents"), role=None) as api:
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
