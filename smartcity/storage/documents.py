"""Documents whose shape varies: incidents with their timeline, and every device payload as it was published.

Collections (MongoDB / FerretDB, or the embedded store):

``incidents``
    One document per incident, ``_id`` its NGSI-LD id: the fields of its latest report, plus ``timeline`` (every
    report, oldest first: ``event_id``, ``time``, ``status``, ``severity``, ``description``, ``laneId``,
    ``validTo``), ``firstReportedAt``, ``lastReportedAt`` and ``clearedAt`` (null while active).
``device_payloads``
    One document per event of any stream, ``_id`` the event id: ``stream``, ``type``, ``source``, ``entity_id``,
    ``time`` and ``data`` (the event as published, personal fields already pseudonymized).

Times are datetimes (BSON dates: UTC, to the millisecond); inside ``data`` they stay the event's ISO 8601 texts.
Idempotent: a payload whose id is
stored is skipped; a report whose event id is in its incident's timeline changes nothing. An incident's reports
are keyed by its id, so one consumer at a time updates one incident.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from smartcity.backends.documents import Document, DocumentStore
from smartcity.storage.envelope import StoredEvent

INCIDENTS = "incidents"
DEVICE_PAYLOADS = "device_payloads"
INCIDENT_STREAM = "incidents"
TIMELINE_FIELDS = ("status", "severity", "description", "laneId", "validTo")
DERIVED = ("_id", "timeline", "firstReportedAt", "lastReportedAt", "clearedAt")


def bson_time(moment: datetime) -> datetime:
    """A moment as a document store keeps it: UTC, to the millisecond."""
    return moment.astimezone(timezone.utc).replace(microsecond=moment.microsecond // 1000 * 1000)


def payload_document(event: StoredEvent) -> Document:
    return {
        "_id": event.event_id,
        "stream": event.stream,
        "type": event.type,
        "source": event.source,
        "entity_id": event.entity_id,
        "time": bson_time(event.time),
        "data": event.data,
    }


def timeline_entry(event: StoredEvent) -> dict[str, Any]:
    return {"event_id": event.event_id, "time": bson_time(event.time), **{f: event.data[f] for f in TIMELINE_FIELDS}}


def incident_document(incident_id: str, timeline: list[dict[str, Any]], fields: dict[str, Any]) -> Document:
    """The incident with the ``fields`` of its latest report, its whole timeline (sorted) and its milestones."""
    timeline = sorted(timeline, key=_timeline_order)
    cleared_at = None
    for entry in timeline:  # cleared when the last run of reports says so, from the first of that run
        if entry["status"] == "cleared":
            cleared_at = cleared_at or entry["time"]
        else:
            cleared_at = None
    return {
        **fields,
        "_id": incident_id,
        "timeline": timeline,
        "firstReportedAt": timeline[0]["time"],
        "lastReportedAt": timeline[-1]["time"],
        "clearedAt": cleared_at,
    }


def _timeline_order(entry: dict[str, Any]) -> tuple[datetime, str]:
    return entry["time"], entry["event_id"]


class DocumentWriter:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def write(self, events: Sequence[StoredEvent]) -> tuple[int, int]:
        """Store the payloads and fold the incident reports; return (new payloads, incidents changed)."""
        new_payloads = self.store.insert_many(DEVICE_PAYLOADS, [payload_document(e) for e in events]) if events else 0
        reports: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in events:
            if event.stream == INCIDENT_STREAM:
                reports[event.event.id].append(event)
        return new_payloads, sum(self._fold(incident_id, batch) for incident_id, batch in reports.items())

    def _fold(self, incident_id: str, reports: list[StoredEvent]) -> int:
        """Add the reports not in the incident's timeline yet; 1 if the document changed, else 0."""
        stored = self.store.get(INCIDENTS, incident_id)
        timeline = list(stored["timeline"]) if stored else []
        known = {entry["event_id"] for entry in timeline}
        fresh = {e.event_id: e for e in reports if e.event_id not in known}
        if not fresh:
            return 0
        timeline += [timeline_entry(event) for event in fresh.values()]
        latest_id = max(timeline, key=_timeline_order)["event_id"]
        # A late report joins the timeline; the incident's fields stay those of its latest report.
        fields = fresh[latest_id].data if latest_id in fresh else {k: v for k, v in stored.items() if k not in DERIVED}
        document = incident_document(incident_id, timeline, fields)
        self.store.upsert(INCIDENTS, document)
        return 1
