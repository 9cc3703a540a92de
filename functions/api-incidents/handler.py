"""api-incidents: ``/v1/incidents`` — list and filter, get one, create, and the workflow open → acknowledged → resolved.

Each incident is a case of the ``incident_cases`` table (migration 0200) with a timeline of workflow actions.
Operators create cases (``POST``); the incidents the streams reported (the ``incidents`` collection of the
document store) become cases too: a listing syncs them all at most every few seconds, reading one refreshes it.
Their facts follow the reports; their workflow state is the API's. A case moves open → acknowledged → resolved, one step at a time, each step
atomic (``UPDATE ... WHERE state = <expected>``): a step from the wrong state, or one that lost a race, is a 409.

``/v1/incidents/anomalies`` lists the windows the anomaly models scored (model, version, score, contributions,
and the incident each flagged one reported) and ``/v1/incidents/hotspots`` the current clusters of anomalies and
incidents as GeoJSON (:mod:`smartcity.api.anomalies`).

Reads need the viewer role, writes the operator role, deleting a case created by mistake the admin role.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from smartcity.api.anomalies import HotspotCollection, ModelAnomaly, anomaly_page, current_hotspots
from smartcity.api.app import READ_ERRORS, WRITE_ERRORS, admin, create_api_app, operator, read_cache_of, viewer
from smartcity.api.auth import Principal
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, json_body
from smartcity.api.pagination import Cursor, Page, PageSize, decode_cursor, page_of
from smartcity.api.problems import ProblemError, conflict, not_found, problem_responses
from smartcity.api.timeseries import TimeRange, cursor_time, sql_time, time_range
from smartcity.events.common import Location, RoadSegmentRef, Zone, city
from smartcity.runtime import Context, http_function
from smartcity.storage.documents import INCIDENTS

State = Literal["open", "acknowledged", "resolved"]
Category = Literal["carAccident", "roadClosed", "roadWorks", "trafficJam"]
Severity = Literal["informational", "low", "medium", "high", "critical"]
NEXT_STATE: dict[str, tuple[str, str]] = {"acknowledge": ("open", "acknowledged"), "resolve": ("acknowledged", "resolved")}
SYNC_INTERVAL_S = 5.0
READ_TTL_S = 5.0
TAG = "incidents"
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


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("incidents", "Road incidents and their workflow: open, acknowledged, resolved.", context)
    router = APIRouter(prefix="/v1/incidents")
    last_sync = {"at": float("-inf")}

    def sync_reported() -> None:
        """Make a case of every incident the streams reported, and refresh their facts (throttled)."""
        if time.monotonic() - last_sync["at"] < SYNC_INTERVAL_S:
            return
        last_sync["at"] = time.monotonic()
        database = context.database
        rows = [stream_case(document) for document in context.documents.find(INCIDENTS)]
        if rows:
            database.executemany(SYNC_SQL, rows)

    def load_case(incident_id: str) -> dict[str, Any]:
        """The case, its facts refreshed from the incident's latest report first (written only when they changed)."""
        query = f"SELECT {CASE_COLUMNS} FROM incident_cases WHERE incident_id = :id"
        rows = context.database.query(query, {"id": incident_id})
        document = context.documents.get(INCIDENTS, incident_id)
        if document is not None and (not rows or _facts_changed(rows[0], stream_case(document))):
            context.database.execute(SYNC_SQL, stream_case(document))
            rows = context.database.query(query, {"id": incident_id})
        if not rows:
            raise not_found(f"incident {incident_id}")
        return rows[0]

    def incident(incident_id: str) -> Incident:
        case = load_case(incident_id)
        workflow = [
            TimelineEntry(**row) for row in context.database.query(
                "SELECT at, action, state, actor, note FROM incident_case_timeline WHERE incident_id = :id ORDER BY seq",
                {"id": incident_id})
        ]
        reports = []
        if case["source"] == "stream":
            document = context.documents.get(INCIDENTS, incident_id) or {"timeline": []}
            reports = [
                TimelineEntry(at=_as_datetime(entry["time"]), action="cleared" if entry["status"] == "cleared" else "reported",
                              state=None, actor=case["reported_by"], note=entry.get("description"))
                for entry in document["timeline"]
            ]
        timeline = sorted(reports + workflow, key=lambda entry: entry.at)
        return Incident(**summary(case).model_dump(), timeline=timeline)

    def record(incident_id: str, action: str, state: str, caller: Principal, note: str | None, at: datetime) -> None:
        database = context.database
        database.execute(
            """INSERT INTO incident_case_timeline (incident_id, seq, at, action, state, actor, note)
               SELECT :id, COALESCE(MAX(seq), 0) + 1, :at, :action, :state, :actor, :note
               FROM incident_case_timeline WHERE incident_id = :id""",
            {"id": incident_id, "at": sql_time(at), "action": action, "state": state,
             "actor": caller.subject, "note": note},
        )

    def written(request: Request, body: Incident, status: int = 200) -> Response:
        read_cache_of(request).invalidate(TAG)
        headers = {"Location": f"/v1/incidents/{body.incident_id}"} if status == 201 else None
        return Response(json_body(body), status_code=status, media_type="application/json", headers=headers)

    @router.get("", response_model=Page[IncidentSummary], responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE},
                dependencies=[Depends(viewer)])
    def list_incidents(
        request: Request,
        limit: PageSize = 50,
        cursor: Cursor = None,
        state: State | None = None,
        severity: Severity | None = None,
        zone: Zone | None = None,
        source: Literal["api", "stream"] | None = None,
        since: Annotated[AwareDatetime | None, Query(description="Only incidents reported at or after this moment")] = None,
    ) -> Response:
        """Incidents, newest first, filtered by workflow state, severity, zone, source and report time."""
        filters = {"state": state, "severity": severity, "zone": zone, "source": source, "since": since}
        after = decode_cursor(cursor, filters, (str, str))

        def produce() -> Page[IncidentSummary]:
            sync_reported()
            database = context.database
            conditions = [f"{column} = :{name}" for name, column in
                          (("state", "state"), ("severity", "severity"), ("zone", "zone_id"), ("source", "source"))
                          if filters[name] is not None]
            params: dict[str, Any] = {name: value for name, value in filters.items() if value is not None}
            if since is not None:
                conditions.append("reported_at >= :since_at")
                params["since_at"] = sql_time(since)
            if after is not None:
                conditions.append("(reported_at < :after_at OR (reported_at = :after_at AND incident_id < :after_id))")
                params.update(after_at=sql_time(cursor_time(after[0])), after_id=after[1])
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = database.query(
                f"SELECT {CASE_COLUMNS} FROM incident_cases {where} "
                "ORDER BY reported_at DESC, incident_id DESC LIMIT :fetch",
                {**params, "fetch": limit + 1},
            )
            cases = [summary(row) for row in rows]
            items, next_cursor = page_of(
                cases, limit, lambda case: [case.reported_at.isoformat(), case.incident_id], filters)
            return Page[IncidentSummary](items=items, next_cursor=next_cursor)

        return cached_read(request, read_cache_of(request), produce, tags=[TAG], ttl_s=READ_TTL_S)

    @router.get("/anomalies", response_model=Page[ModelAnomaly], responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE},
                dependencies=[Depends(viewer)])
    def anomalies(
        request: Request,
        period: Annotated[TimeRange, Depends(time_range)],
        entity_id: Annotated[str | None, Query(description="One sensor or road segment")] = None,
        segment_id: Annotated[str | None, Query(description="The windows of one road segment's sensors")] = None,
        zone: Zone | None = None,
        model: Annotated[str | None, Query(description="One detector: isolation-forest, autoencoder ...")] = None,
        min_score: Annotated[float | None, Query(ge=0, le=1, description=(
            "Every score from this one on, flagged or not; default: the flagged windows only"))] = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
    ) -> Response:
        """The windows the anomaly models scored in ``from``..``to`` (by window start), newest first: model and
        version, calibrated score, the features that weighed most, and for a flagged window the incident it
        reported. The streaming job's robust z-score flags are `/v1/traffic/anomalies`."""
        filters = {"entity_id": entity_id, "segment_id": segment_id, "zone": zone, "model": model,
                   "min_score": min_score, **period.cursor_filters}
        return cached_read(request, read_cache_of(request),
                           lambda: anomaly_page(context.database, period, filters, limit, cursor), ttl_s=READ_TTL_S)

    @router.get("/hotspots", response_model=HotspotCollection, responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE},
                dependencies=[Depends(viewer)])
    def hotspots(
        request: Request,
        geometry: Annotated[Literal["extent", "centroid"], Query(description=(
            "Each hotspot as its extent (a Polygon around its members) or its centroid (a Point)"))] = "extent",
        zone: Zone | None = None,
    ) -> Response:
        """The current hotspots: clusters of the last hour's anomalies and active incidents, close in space and
        time, as a GeoJSON FeatureCollection, largest first; each with its members (incident ids), since when."""
        return cached_read(request, read_cache_of(request),
                           lambda: current_hotspots(context.database, geometry, zone), ttl_s=READ_TTL_S)

    @router.get("/{incident_id}", response_model=Incident,
                responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE, **problem_responses(404)},
                dependencies=[Depends(viewer)])
    def get_incident(request: Request, incident_id: str) -> Response:
        """One incident with its timeline: the streams' reports and the workflow's steps, oldest first."""
        return cached_read(request, read_cache_of(request), lambda: incident(incident_id), tags=[TAG], ttl_s=READ_TTL_S)

    @router.post("", status_code=201, response_model=Incident, responses=WRITE_ERRORS)
    def create_incident(request: Request, report: IncidentCreate, caller: Principal = Depends(operator)) -> Response:
        """Report an incident; it starts open."""
        database = context.database
        incident_id = f"urn:ngsi-ld:Alert:api-{uuid.uuid4().hex}"
        now = datetime.now(timezone.utc)
        with database.transaction():
            database.execute(
                f"""INSERT INTO incident_cases ({CASE_COLUMNS}) VALUES (:id, 'api', 'open', 1, :category, :severity,
                    :description, :zone, :segment_id, :lon, :lat, :now, NULL, :now, :actor)""",
                {"id": incident_id, "category": report.category, "severity": report.severity,
                 "description": report.description, "zone": city().zone_of(report.location.lon, report.location.lat),
                 "segment_id": report.segment_id, "lon": report.location.lon, "lat": report.location.lat,
                 "now": sql_time(now), "actor": caller.subject},
            )
            record(incident_id, "created", "open", caller, None, now)
        return written(request, incident(incident_id), status=201)

    def transition(request: Request, incident_id: str, action: str, note: str | None, caller: Principal) -> Response:
        expected, target = NEXT_STATE[action]
        database = context.database
        now = datetime.now(timezone.utc)
        with database.transaction():
            changed = database.execute(
                """UPDATE incident_cases SET state = :target, version = version + 1, updated_at = :now
                   WHERE incident_id = :id AND state = :expected""",
                {"target": target, "now": sql_time(now), "id": incident_id, "expected": expected},
            )
            if changed:
                record(incident_id, action + "d", target, caller, note, now)
        if not changed:
            state = load_case(incident_id)["state"]
            raise conflict(f"incident {incident_id} is {state}; only an {expected} incident can be {target}")
        return written(request, incident(incident_id))

    @router.post("/{incident_id}/acknowledge", response_model=Incident, responses=WRITE_ERRORS)
    def acknowledge(
        request: Request, incident_id: str, body: Annotated[TransitionNote | None, Body()] = None,
        caller: Principal = Depends(operator),
    ) -> Response:
        """Open → acknowledged: someone is on it."""
        return transition(request, incident_id, "acknowledge", body.note if body else None, caller)

    @router.post("/{incident_id}/resolve", response_model=Incident, responses=WRITE_ERRORS)
    def resolve(
        request: Request, incident_id: str, body: Annotated[TransitionNote | None, Body()] = None,
        caller: Principal = Depends(operator),
    ) -> Response:
        """Acknowledged → resolved: it is over."""
        return transition(request, incident_id, "resolve", body.note if body else None, caller)

    @router.delete("/{incident_id}", status_code=204, responses=WRITE_ERRORS, response_class=Response)
    def delete_incident(request: Request, incident_id: str, caller: Principal = Depends(admin)) -> Response:
        """Delete a case created through the API by mistake (admin). Reported incidents cannot be deleted here."""
        case = load_case(incident_id)
        if case["source"] != "api":
            raise ProblemError(409, f"incident {incident_id} comes from the streams; resolve it instead")
        with context.database.transaction():
            context.database.execute("DELETE FROM incident_case_timeline WHERE incident_id = :id", {"id": incident_id})
            context.database.execute("DELETE FROM incident_cases WHERE incident_id = :id", {"id": incident_id})
        read_cache_of(request).invalidate(TAG)
        return Response(status_code=204)

    app.include_router(router)
    return app
