"""store-documents, loaded through the real loader and fed by its Kafka trigger's record path, over the embedded
document store."""

from __future__ import annotations

from datetime import timedelta

from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS
from tests.storage_samples import MOMENT, sample_events
from tests.stream_functions import (
    StoreFunction, assert_bad_data_is_dead_lettered, assert_redelivery_changes_nothing, store_fixture,
)

store = store_fixture("store-documents")


def documents(store: StoreFunction) -> dict[str, list[dict]]:
    found = store.context.documents.find
    return {name: found(name, sort=[("_id", 1)]) for name in (DEVICE_PAYLOADS, INCIDENTS)}


def test_every_event_is_a_payload_and_each_incident_a_document_with_its_timeline(store):
    assert store.deliver().handled == store.valid
    stored = documents(store)
    assert len(stored[DEVICE_PAYLOADS]) == store.valid
    payload = next(p for p in stored[DEVICE_PAYLOADS] if p["_id"] == "parking-2")
    assert (payload["stream"], payload["entity_id"]) == ("parking", "urn:ngsi-ld:OffStreetParking:park-2")
    assert payload["data"] == sample_events(n=2)["parking"].model_dump(mode="json")
    assert [incident["_id"] for incident in stored[INCIDENTS]] == [
        "urn:ngsi-ld:Alert:incident-1", "urn:ngsi-ld:Alert:incident-2"]
    first = stored[INCIDENTS][0]
    assert [entry["event_id"] for entry in first["timeline"]] == ["incidents-1"]
    assert (first["status"], first["clearedAt"]) == ("active", None)


def test_a_later_report_extends_the_incidents_timeline_and_clears_it(store):
    store.deliver()
    cleared = sample_events(MOMENT + timedelta(minutes=20))["incidents"].model_copy(update={"status": "cleared"})
    assert store.deliver_events("incidents", {"incidents-1-cleared": cleared}).handled == 1
    incident = store.context.documents.get(INCIDENTS, "urn:ngsi-ld:Alert:incident-1")
    assert [(entry["event_id"], entry["status"]) for entry in incident["timeline"]] == [
        ("incidents-1", "active"), ("incidents-1-cleared", "cleared")]
    assert incident["status"] == "cleared" and incident["clearedAt"] == incident["lastReportedAt"]


def test_an_event_whose_data_fits_no_model_is_dead_lettered_naming_the_field(store):
    assert_bad_data_is_dead_lettered(store)
    assert "bad-humidity" not in {payload["_id"] for payload in documents(store)[DEVICE_PAYLOADS]}


def test_a_redelivered_event_adds_no_document_and_no_timeline_entry(store):
    assert_redelivery_changes_nothing(store, lambda: documents(store))
