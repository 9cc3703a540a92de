"""api-analytics: ``/v1/analytics`` — KPIs over a period, and comparisons between periods or zones.

The routes; the KPIs and their queries are :mod:`smartcity.api.analytics`. Results are cached for a minute.
Every route needs the viewer role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import AwareDatetime

from smartcity.api.analytics import Kpis, PeriodComparison, ZoneComparison, kpis, period_comparison
from smartcity.api.app import READ_ERRORS, create_api_app, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read
from smartcity.api.dependencies import DatabaseDep, ReadCacheDep
from smartcity.api.problems import bad_request
from smartcity.api.timeseries import MAX_RANGE, TimeRange, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function

KPI_TTL_S = 60.0

router = APIRouter(prefix="/v1/analytics", dependencies=[Depends(viewer)],
                   responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE})


@router.get("/kpis", response_model=Kpis)
def get_kpis(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
    period: Annotated[TimeRange, Depends(time_range)], zone: Zone | None = None,
) -> Response:
    """Average speed, congestion hours, transit punctuality and air-quality days over ``from``..``to``."""
    return cached_read(request, read_cache, lambda: kpis(database, period, zone), ttl_s=KPI_TTL_S, max_age_s=60)


@router.get("/compare/periods", response_model=PeriodComparison)
def compare_periods(
    request: Request,
    database: DatabaseDep,
    read_cache: ReadCacheDep,
    period: Annotated[TimeRange, Depends(time_range)],
    baseline_from: Annotated[AwareDatetime | None, Query(description="Start of the baseline; default: the span just before `from`")] = None,
    baseline_to: Annotated[AwareDatetime | None, Query(description="End of the baseline; default: `from`")] = None,
    zone: Zone | None = None,
) -> Response:
    """The KPIs of ``from``..``to`` beside those of a baseline period, and the change."""
    baseline_end = baseline_to or period.start
    baseline_start = baseline_from or baseline_end - (period.end - period.start)
    if baseline_start >= baseline_end:
        raise bad_request("query.baseline_from", "must be before `baseline_to`")
    if baseline_end - baseline_start > MAX_RANGE:
        raise bad_request("query.baseline_from", f"the baseline may span at most {MAX_RANGE.days} days")
    baseline = TimeRange(baseline_start, baseline_end)
    return cached_read(request, read_cache, lambda: period_comparison(database, period, baseline, zone),
                       ttl_s=KPI_TTL_S, max_age_s=60)


@router.get("/compare/zones", response_model=ZoneComparison)
def compare_zones(
    request: Request,
    database: DatabaseDep,
    read_cache: ReadCacheDep,
    period: Annotated[TimeRange, Depends(time_range)],
    zones: Annotated[list[Zone], Query(min_length=2, max_length=20, description="Two to twenty zones: `zones=Z11&zones=Z12`")],
) -> Response:
    """The KPIs of several zones over the same period."""
    if len(set(zones)) != len(zones):
        raise bad_request("query.zones", "a zone is named twice")
    return cached_read(request, read_cache, lambda: ZoneComparison(zones=[kpis(database, period, zone) for zone in zones]),
                       ttl_s=KPI_TTL_S, max_age_s=60)


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("analytics", "KPIs of the city's mobility and air, and comparisons.", context)
    app.include_router(router)
    return app
