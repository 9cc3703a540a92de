"""Incident cases for ``/v1/incidents``: the models of its answers, and the cases' reads and workflow writes.

Each incident is a case of the ``incident_cases`` table (migration 0200) with a timeline of workflow actions.
Operators create cases; the incidents the streams reported (the ``incidents`` collection of the document store)
become cases too: :meth:`IncidentCases.sync_reported` makes them all cases at most every few seconds, reading one
refreshes it. Their facts follow the reports; their workflow state is the API's. A case moves open → acknowledged
→ resolved, one step at a time, each step atomic (``UPDATE ... WHERE state = <expected>``): a step from the wrong
state, or one that lost a race, is a 409.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from smartcity.api.auth import Principal
from smartcity.api.dependencies import context_of
from smartcity.api.pagination import Page, decode_cursor, page_of
from smartcity.api.problems import ProblemError, conflict, not_found
from smartcity.api.timeseries import cursor_time, sql_time
from smartcity.backends.database import Database
from smartcity.backends.documents import DocumentStore
from smartcity.events.common import Location, RoadSegmentRef, city
from smartcity.storage.documents import INCIDENTS

State = Literal["open", "acknowledged", "resolved"]
Category = Literal["carAccident", "roadClosed", "roadWorks", "trafficJam"]
Severity = Literal["informational", "low", "medium", "high", "critical"]
NEXT_STATE: dict[str, tuple[str, str]] = {"acknowledge": ("open", "acknowledged"), "resolve": ("acknowledged", "resolved")}
SYNC_INTERVAL_S = 5.0
CASE_COLUMNS = """incident_id, source, state, version, category, severity, description, zone_id, segment_id, lon, lat,
    reported_at, cleared_at, updated_at, reported_by"""


class IncidentCreate(BaseModel):
    """An incident an operator reports."""

    model_config = ConfigDict(extra="forbid")

    category: Category
    severity: Severity
    description: str = Field(min_length=1, max_length=2000)
    location: Location
    segment_id: RoadSegmentRef | None = None


class TransitionNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, description="Why, for the timeline")


class TimelineEntry(BaseModel):
    at: datetime
    action: str = Field(description="reported / cleared (from the streams), created / acknowledged / resolved")
    state: State | None = Field(description="The workflow state after the action; null for stream reports")
    actor: str
    note: str | None


class IncidentSummary(BaseModel):
    incident_id: str
    source: Literal["api", "stream"]
    state: State
    version: int
    category: str
    severity: str
    description: str
    zone: str
    segment_id: str | None
    lon: float
    lat: float
    reported_at: datetime
    cleared_at: datetime | None = Field(description="When the streams reported it cleared; null while active")
    updated_at: datetime
    reported_by: str


class Incident(IncidentSummary):
    timeline: list[TimelineEntry]


def summary(row: dict[str, Any]) -> IncidentSummary:
    return IncidentSummary(**{**row, "zone": row["zone_id"]})


def stream_case(document: dict[str, Any]) -> dict[str, Any]:
    """A ``incident_cases`` row from a reported incident of the document store."""
    lon, lat = document["location"]["coordinates"]
    cleared_at = document.get("clearedAt")
    return {
        "incident_id": document["_id"], "category": document["subCategory"], "severity": document["severity"],
        "description": document["description"], "zone_id": document["zone"],
        "segment_id": document.get("refRoadSegment"), "lon": lon, "lat": lat,
        "reported_at": sql_time(_as_datetime(document["firstReportedAt"])),
        "cleared_at": sql_time(_as_datetime(cleared_at)) if cleared_at else None,
        "reported_by": document.get("alertSource") or "stream",
    }


SYNC_SQL = f"""INSERT INTO incident_cases ({CASE_COLUMNS})
    VALUES (:incident_id, 'stream', 'open', 1, :category, :severity, :description, :zone_id, :segment_id, :lon, :lat,
            :reported_at, :cleared_at, :reported_at, :reported_by)
    ON CONFLICT (incident_id) DO UPDATE SET category = excluded.category, severity = excluded.severity,
        description = excluded.description, zone_id = excluded.zone_id, segment_id = excluded.segment_id,
        lon = excluded.lon, lat = excluded.lat, cleared_at = excluded.cleared_at
    WHERE incident_cases.source = 'stream'"""


def _facts_changed(case: dict[str, Any], reported: dict[str, Any]) -> bool:
    if case["source"] != "stream":
        return False
    fields = ("category", "severity", "description", "zone_id", "segment_id", "lon", "lat")
    cleared = case["cleared_at"] is not None
    return any(case[name] != reported[name] for name in fields) or cleared != (reported["cleared_at"] is not None)


def _as_datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class IncidentCases:
    """The cases of one API function: listing, reading, creating, moving and deleting them."""

    def __init__(self, database: Database, documents: DocumentStore) -> None:
        self.database = database
        self.documents = documents
        self.last_sync = float("-inf")

    def sync_reported(self) -> None:
        """Make a case of every incident the streams reported, and refresh their facts (throttled)."""
        if time.monotonic() - self.last_sync < SYNC_INTERVAL_S:
            return
        self.last_sync = time.monotonic()
        rows = [stream_case(document) for document in self.documents.find(INCIDENTS)]
        if rows:
            self.database.executemany(SYNC_SQL, rows)

    def case(self, incident_id: str) -> dict[str, Any]:
        """The case, its facts refreshed from the incident's latest report first (written only when they changed)."""
        query = f"SELECT {CASE_COLUMNS} FROM incident_cases WHERE incident_id = :id"
        rows = self.database.query(query, {"id": incident_id})
        document = self.documents.get(INCIDENTS, incident_id)
        if document is not None and (not rows or _facts_changed(rows[0], stream_case(document))):
            self.database.execute(SYNC_SQL, stream_case(document))
            rows = self.database.query(query, {"id": incident_id})
        if not rows:
            raise not_found(f"incident {incident_id}")
        return rows[0]

    def incident(self, incident_id: str) -> Incident:
        """One case with its timeline: the streams' reports and the workflow's steps, oldest first."""
        case = self.case(incident_id)
        workflow = [TimelineEntry(**row) for row in self.database.query(
            "SELECT at, action, state, actor, note FROM incident_case_timeline WHERE incident_id = :id ORDER BY seq",
            {"id": incident_id})]
        reports = []
        if case["source"] == "stream":
            document = self.documents.get(INCIDENTS, incident_id) or {"timeline": []}
            reports = [
                TimelineEntry(at=_as_datetime(entry["time"]), action="cleared" if entry["status"] == "cleared" else "reported",
                              state=None, actor=case["reported_by"], note=entry.get("description"))
                for entry in document["timeline"]
            ]
        timeline = sorted(reports + workflow, key=lambda entry: entry.at)
        return Incident(**summary(case).model_dump(), timeline=timeline)

    def page(self, filters: dict[str, Any], limit: int, cursor: str | None) -> Page[IncidentSummary]:
        """Cases, newest first, filtered by ``state``, ``severity``, ``zone``, ``source`` and ``since``."""
        after = decode_cursor(cursor, filters, (str, str))
        self.sync_reported()
        conditions = [f"{column} = :{name}" for name, column in
                      (("state", "state"), ("severity", "severity"), ("zone", "zone_id"), ("source", "source"))
                      if filters[name] is not None]
        params: dict[str, Any] = {name: value for name, value in filters.items() if value is not None}
        if filters["since"] is not None:
            conditions.append("reported_at >= :since_at")
            params["since_at"] = sql_time(filters["since"])
        if after is not None:
            conditions.append("(reported_at < :after_at OR (reported_at = :after_at AND incident_id < :after_id))")
            params.update(after_at=sql_time(cursor_time(after[0])), after_id=after[1])
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self.database.query(
            f"SELECT {CASE_COLUMNS} FROM incident_cases {where} ORDER BY reported_at DESC, incident_id DESC LIMIT :fetch",
            {**params, "fetch": limit + 1})
        items, next_cursor = page_of([summary(row) for row in rows], limit,
                                     lambda case: [case.reported_at.isoformat(), case.incident_id], filters)
        return Page[IncidentSummary](items=items, next_cursor=next_cursor)

    def _record(self, incident_id: str, action: str, state: str, caller: Principal, note: str | None,
                at: datetime) -> None:
        self.database.execute(
            """INSERT INTO incident_case_timeline (incident_id, seq, at, action, state, actor, note)
               SELECT :id, COALESCE(MAX(seq), 0) + 1, :at, :action, :state, :actor, :note
               FROM incident_case_timeline WHERE incident_id = :id""",
            {"id": incident_id, "at": sql_time(at), "action": action, "state": state, "actor": caller.subject,
             "note": note},
        )

    def create(self, report: IncidentCreate, caller: Principal) -> Incident:
        """A new case, open, created by ``caller``."""
        incident_id = f"urn:ngsi-ld:Alert:api-{uuid.uuid4().hex}"
        now = datetime.now(timezone.utc)
        with self.database.transaction():
            self.database.execute(
                f"""INSERT INTO incident_cases ({CASE_COLUMNS}) VALUES (:id, 'api', 'open', 1, :category, :severity,
                    :description, :zone, :segment_id, :lon, :lat, :now, NULL, :now, :actor)""",
                {"id": incident_id, "category": report.category, "severity": report.severity,
                 "description": report.description, "zone": city().zone_of(report.location.lon, report.location.lat),
                 "segment_id": report.segment_id, "lon": report.location.lon, "lat": report.location.lat,
                 "now": sql_time(now), "actor": caller.subject},
            )
            self._record(incident_id, "created", "open", caller, None, now)
        return self.incident(incident_id)

    def transition(self, incident_id: str, action: str, note: str | None, caller: Principal) -> Incident:
        """One workflow step (``acknowledge``, ``resolve``); a 409 unless the case is in the state it starts from.

        The case is read first, so an incident the streams reported becomes a case (with its latest facts) even
        when no listing has synced it yet, and an unknown one is a 404."""
        expected, target = NEXT_STATE[action]
        self.case(incident_id)
        now = datetime.now(timezone.utc)
        with self.database.transaction():
            changed = self.database.execute(
                """UPDATE incident_cases SET state = :target, version = version + 1, updated_at = :now
                   WHERE incident_id = :id AND state = :expected""",
                {"target": target, "now": sql_time(now), "id": incident_id, "expected": expected},
            )
            if changed:
                self._record(incident_id, action + "d", target, caller, note, now)
        if not changed:
            state = self.case(incident_id)["state"]
            raise conflict(f"incident {incident_id} is {state}; only an {expected} incident can be {target}")
        return self.incident(incident_id)

    def delete(self, incident_id: str) -> None:
        """Delete a case created through the API (a 409 for one the streams reported)."""
        if self.case(incident_id)["source"] != "api":
            raise ProblemError(409, f"incident {incident_id} comes from the streams; resolve it instead")
        with self.database.transaction():
            self.database.execute("DELETE FROM incident_case_timeline WHERE incident_id = :id", {"id": incident_id})
            self.database.execute("DELETE FROM incident_cases WHERE incident_id = :id", {"id": incident_id})


async def incident_cases_of(request: Request) -> IncidentCases:
    """The dependency: the cases of the function whose app serves ``request`` (one per app, for its sync clock)."""
    state = request.app.state
    if getattr(state, "incident_cases", None) is None:
        context = context_of(request)
        state.incident_cases = IncidentCases(context.database, context.documents)
    return state.incident_cases
