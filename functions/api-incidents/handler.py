"""api-incidents: ``/v1/incidents`` — list and filter, get one, create, and the workflow open → acknowledged → resolved.

The routes; the cases, their sync with the streams' reports and their workflow are :mod:`smartcity.api.incidents`.
``/v1/incidents/anomalies`` lists the windows the anomaly models scored and ``/v1/incidents/hotspots`` the current
clusters of anomalies and incidents as GeoJSON (:mod:`smartcity.api.anomalies`).

Reads need the viewer role, writes the operator role, deleting a case created by mistake the admin role.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response
from pydantic import AwareDatetime

from smartcity.api.anomalies import HotspotCollection, ModelAnomaly, anomaly_page, current_hotspots
from smartcity.api.app import READ_ERRORS, WRITE_ERRORS, admin, create_api_app, operator, viewer
from smartcity.api.auth import Principal
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, ReadCache, cached_read, json_body
from smartcity.api.dependencies import DatabaseDep, ReadCacheDep
from smartcity.api.incidents import (
    Incident, IncidentCases, IncidentCreate, IncidentSummary, Severity, State, TransitionNote, incident_cases_of,
)
from smartcity.api.pagination import Cursor, Page, PageSize
from smartcity.api.problems import problem_responses
from smartcity.api.timeseries import TimeRange, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function

READ_TTL_S = 5.0
TAG = "incidents"
READ = {"responses": {**READ_ERRORS, **NOT_MODIFIED_RESPONSE}, "dependencies": [Depends(viewer)]}

router = APIRouter(prefix="/v1/incidents")
Cases = Annotated[IncidentCases, Depends(incident_cases_of)]
Operator = Annotated[Principal, Depends(operator)]
Note = Annotated[TransitionNote | None, Body()]


def written(request: Request, read_cache: ReadCache, body: Incident, status: int = 200) -> Response:
    read_cache.invalidate(TAG)
    headers = {"Location": f"/v1/incidents/{body.incident_id}"} if status == 201 else None
    return Response(json_body(body), status_code=status, media_type="application/json", headers=headers)


@router.get("", response_model=Page[IncidentSummary], **READ)
def list_incidents(
    request: Request, cases: Cases, read_cache: ReadCacheDep, limit: PageSize = 50, cursor: Cursor = None,
    state: State | None = None, severity: Severity | None = None, zone: Zone | None = None,
    source: Literal["api", "stream"] | None = None,
    since: Annotated[AwareDatetime | None, Query(description="Only incidents reported at or after this moment")] = None,
) -> Response:
    """Incidents, newest first, filtered by workflow state, severity, zone, source and report time."""
    filters = {"state": state, "severity": severity, "zone": zone, "source": source, "since": since}
    return cached_read(request, read_cache, lambda: cases.page(filters, limit, cursor), tags=[TAG], ttl_s=READ_TTL_S)


@router.get("/anomalies", response_model=Page[ModelAnomaly], **READ)
def anomalies(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
    period: Annotated[TimeRange, Depends(time_range)],
    entity_id: Annotated[str | None, Query(description="One sensor or road segment")] = None,
    segment_id: Annotated[str | None, Query(description="The windows of one road segment's sensors")] = None,
    zone: Zone | None = None,
    model: Annotated[str | None, Query(description="One detector: isolation-forest, autoencoder ...")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1, description=(
        "Every score from this one on, flagged or not; default: the flagged windows only"))] = None,
    limit: PageSize = 100, cursor: Cursor = None,
) -> Response:
    """The windows the anomaly models scored in ``from``..``to`` (by window start), newest first: model and
    version, calibrated score, the features that weighed most, and for a flagged window the incident it
    reported. The streaming job's robust z-score flags are `/v1/traffic/anomalies`."""
    filters = {"entity_id": entity_id, "segment_id": segment_id, "zone": zone, "model": model,
               "min_score": min_score, **period.cursor_filters}
    return cached_read(request, read_cache, lambda: anomaly_page(database, period, filters, limit, cursor),
                       ttl_s=READ_TTL_S)


@router.get("/hotspots", response_model=HotspotCollection, **READ)
def hotspots(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
    geometry: Annotated[Literal["extent", "centroid"], Query(description=(
        "Each hotspot as its extent (a Polygon around its members) or its centroid (a Point)"))] = "extent",
    zone: Zone | None = None,
) -> Response:
    """The current hotspots: clusters of the last hour's anomalies and active incidents, close in space and
    time, as a GeoJSON FeatureCollection, largest first; each with its members (incident ids), since when."""
    return cached_read(request, read_cache, lambda: current_hotspots(database, geometry, zone), ttl_s=READ_TTL_S)


@router.get("/{incident_id}", response_model=Incident, dependencies=[Depends(viewer)],
            responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE, **problem_responses(404)})
def get_incident(request: Request, cases: Cases, read_cache: ReadCacheDep, incident_id: str) -> Response:
    """One incident with its timeline: the streams' reports and the workflow's steps, oldest first."""
    return cached_read(request, read_cache, lambda: cases.incident(incident_id), tags=[TAG], ttl_s=READ_TTL_S)


@router.post("", status_code=201, response_model=Incident, responses=WRITE_ERRORS)
def create_incident(request: Request, cases: Cases, read_cache: ReadCacheDep, report: IncidentCreate,
                    caller: Operator) -> Response:
    """Report an incident; it starts open."""
    return written(request, read_cache, cases.create(report, caller), status=201)


@router.post("/{incident_id}/acknowledge", response_model=Incident, responses=WRITE_ERRORS)
def acknowledge(request: Request, cases: Cases, read_cache: ReadCacheDep, incident_id: str, caller: Operator,
                body: Note = None) -> Response:
    """Open → acknowledged: someone is on it."""
    return written(request, read_cache, cases.transition(incident_id, "acknowledge", body and body.note, caller))


@router.post("/{incident_id}/resolve", response_model=Incident, responses=WRITE_ERRORS)
def resolve(request: Request, cases: Cases, read_cache: ReadCacheDep, incident_id: str, caller: Operator,
            body: Note = None) -> Response:
    """Acknowledged → resolved: it is over."""
    return written(request, read_cache, cases.transition(incident_id, "resolve", body and body.note, caller))


@router.delete("/{incident_id}", status_code=204, responses=WRITE_ERRORS, response_class=Response)
def delete_incident(request: Request, cases: Cases, read_cache: ReadCacheDep, incident_id: str,
                    caller: Annotated[Principal, Depends(admin)]) -> Response:
    """Delete a case created through the API by mistake (admin). Reported incidents cannot be deleted here."""
    cases.delete(incident_id)
    read_cache.invalidate(TAG)
    return Response(status_code=204)


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("incidents", "Road incidents and their workflow: open, acknowledged, resolved.", context)
    app.include_router(router)
    return app
