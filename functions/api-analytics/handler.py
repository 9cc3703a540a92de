"""api-analytics: ``/v1/analytics`` — KPIs over a period, and comparisons between periods or zones.

The KPIs are computed from the stream tables: average speed and congestion hours from ``traffic_flow``, transit
punctuality from ``transport_positions``, air-quality days from ``air_quality_observations``. A zone filter
keeps the rows observed in that zone. Results are cached for a minute. Every route needs the viewer role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read
from smartcity.api.problems import bad_request
from smartcity.api.timeseries import MAX_RANGE, TimeRange, bucket_sql, from_epoch, sql_time, time_range
from smartcity.backends.database import Database
from smartcity.events.common import Zone, city
from smartcity.runtime import Context, http_function

KPI_TTL_S = 60.0
CONGESTION_BUCKET_S = 300
ON_TIME_EARLIEST_S, ON_TIME_LATEST_S = -60, 300
# European CAQI bands of a day's worst hourly index; a "good" day stays below 50 (veryLow or low).
CAQI_BANDS = (("veryLow", 25), ("low", 50), ("medium", 75), ("high", 100), ("veryHigh", None))
GOOD_DAY_BELOW = 50


class AirQualityDays(BaseModel):
    days_observed: int
    good_days: int = Field(description=f"Days whose worst hourly CAQI stayed below {GOOD_DAY_BELOW}")
    by_level: dict[str, int] = Field(description="Days per CAQI band of the day's worst index")


class Kpis(BaseModel):
    """Key figures of one period (and zone)."""

    start: datetime
    end: datetime
    zone: str | None
    average_speed_kmh: float | None = Field(description="Mean speed over every sensor interval with traffic")
    congestion_hours: float = Field(description="Road-segment hours with at least one congested lane (5-min steps)")
    transit_punctuality: float | None = Field(
        description=f"Share of vehicle positions between {ON_TIME_EARLIEST_S} s and {ON_TIME_LATEST_S} s late")
    air_quality: AirQualityDays = Field(description="Days of the city's time zone, by their worst CAQI")


class KpiChange(BaseModel):
    average_speed_kmh: float | None
    congestion_hours: float
    transit_punctuality: float | None
    good_air_days: int


class PeriodComparison(BaseModel):
    current: Kpis
    baseline: Kpis
    change: KpiChange = Field(description="current minus baseline; null where either is unknown")


class ZoneComparison(BaseModel):
    zones: list[Kpis]


def _difference(current: float | None, baseline: float | None) -> float | None:
    return None if current is None or baseline is None else current - baseline


def caqi_band(index: float) -> str:
    return next(name for name, below in CAQI_BANDS if below is None or index < below)


def kpis(database: Database, period: TimeRange, zone: str | None) -> Kpis:
    """The KPIs of ``period`` (in ``zone``, or the whole city)."""
    dialect = database.dialect
    params = {"start": sql_time(period.start), "end": sql_time(period.end), "zone": zone}
    where = "observed_at >= :start AND observed_at < :end" + (" AND zone_id = :zone" if zone else "")
    speed = database.query(f"SELECT AVG(average_vehicle_speed) AS v FROM traffic_flow WHERE {where}", params)[0]["v"]
    congested_steps = database.query(
        f"""SELECT COUNT(*) AS n FROM (SELECT segment_id, {bucket_sql(dialect, 'observed_at', CONGESTION_BUCKET_S)} AS step
            FROM traffic_flow WHERE {where} AND congested GROUP BY segment_id, step) AS steps""", params)[0]["n"]
    punctuality = database.query(
        f"""SELECT AVG(CASE WHEN delay BETWEEN {ON_TIME_EARLIEST_S} AND {ON_TIME_LATEST_S} THEN 1.0 ELSE 0.0 END) AS p
            FROM transport_positions WHERE {where}""", params)[0]["p"]
    hours = database.query(
        f"""SELECT {bucket_sql(dialect, 'observed_at', 3600)} AS hour, MAX(air_quality_index) AS worst
            FROM air_quality_observations WHERE {where} GROUP BY 1""", params)
    return Kpis(
        start=period.start, end=period.end, zone=zone,
        average_speed_kmh=speed, congestion_hours=congested_steps * CONGESTION_BUCKET_S / 3600,
        transit_punctuality=punctuality, air_quality=air_quality_days(hours),
    )


def air_quality_days(hours: list[dict[str, Any]]) -> AirQualityDays:
    """Days of the city's time zone from hourly worst indexes: each day is as bad as its worst hour."""
    local = ZoneInfo(city().timezone)
    worst: dict[str, float] = {}
    for row in hours:
        day = from_epoch(row["hour"]).astimezone(local).date().isoformat()
        worst[day] = max(worst.get(day, 0), row["worst"])
    by_level = {name: 0 for name, _ in CAQI_BANDS}
    for index in worst.values():
        by_level[caqi_band(index)] += 1
    return AirQualityDays(
        days_observed=len(worst), good_days=sum(index < GOOD_DAY_BELOW for index in worst.values()), by_level=by_level
    )


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("analytics", "KPIs of the city's mobility and air, and comparisons.", context)
    router = APIRouter(prefix="/v1/analytics", dependencies=[Depends(viewer)],
                       responses={**READ_ERRORS, **NOT_MODIFIED_RESPONSE})

    @router.get("/kpis", response_model=Kpis)
    def get_kpis(
        request: Request, period: Annotated[TimeRange, Depends(time_range)], zone: Zone | None = None
    ) -> Response:
        """Average speed, congestion hours, transit punctuality and air-quality days over ``from``..``to``."""
        return cached_read(request, read_cache_of(request), lambda: kpis(context.database, period, zone),
                           ttl_s=KPI_TTL_S, max_age_s=60)

    @router.get("/compare/periods", response_model=PeriodComparison)
    def compare_periods(
        request: Request,
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

        def produce() -> PeriodComparison:
            current = kpis(context.database, period, zone)
            baseline = kpis(context.database, TimeRange(baseline_start, baseline_end), zone)
            change = KpiChange(
                average_speed_kmh=_difference(current.average_speed_kmh, baseline.average_speed_kmh),
                congestion_hours=current.congestion_hours - baseline.congestion_hours,
                transit_punctuality=_difference(current.transit_punctuality, baseline.transit_punctuality),
                good_air_days=current.air_quality.good_days - baseline.air_quality.good_days,
            )
            return PeriodComparison(current=current, baseline=baseline, change=change)

        return cached_read(request, read_cache_of(request), produce, ttl_s=KPI_TTL_S, max_age_s=60)

    @router.get("/compare/zones", response_model=ZoneComparison)
    def compare_zones(
        request: Request,
        period: Annotated[TimeRange, Depends(time_range)],
        zones: Annotated[list[Zone], Query(min_length=2, max_length=20, description="Two to twenty zones: `zones=Z11&zones=Z12`")],
    ) -> Response:
        """The KPIs of several zones over the same period."""
        if len(set(zones)) != len(zones):
            raise bad_request("query.zones", "a zone is named twice")
        return cached_read(
            request, read_cache_of(request),
            lambda: ZoneComparison(zones=[kpis(context.database, period, zone) for zone in zones]),
            ttl_s=KPI_TTL_S, max_age_s=60,
        )

    app.include_router(router)
    return app
