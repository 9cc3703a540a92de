"""KPIs for ``/v1/analytics``: the models of its answers and the queries behind them.

The KPIs are computed from the stream tables: average speed and congestion hours from ``traffic_flow``, transit
punctuality from ``transport_positions`` (the punctuality window of :mod:`smartcity.api.transport`), air-quality
days from ``air_quality_observations``. A zone filter keeps the rows observed in that zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from smartcity.api.timeseries import TimeRange, bucket_sql, from_epoch, sql_time
from smartcity.api.transport import ON_TIME_EARLIEST_S, ON_TIME_LATEST_S, ON_TIME_SQL
from smartcity.backends.database import Database
from smartcity.events.common import city

CONGESTION_BUCKET_S = 300
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
        f"SELECT AVG({ON_TIME_SQL}) AS p FROM transport_positions WHERE {where}", params)[0]["p"]
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


def period_comparison(database: Database, period: TimeRange, baseline: TimeRange, zone: str | None
                      ) -> PeriodComparison:
    """The KPIs of ``period`` beside those of ``baseline``, and the change."""
    current, before = kpis(database, period, zone), kpis(database, baseline, zone)
    change = KpiChange(
        average_speed_kmh=_difference(current.average_speed_kmh, before.average_speed_kmh),
        congestion_hours=current.congestion_hours - before.congestion_hours,
        transit_punctuality=_difference(current.transit_punctuality, before.transit_punctuality),
        good_air_days=current.air_quality.good_days - before.air_quality.good_days,
    )
    return PeriodComparison(current=current, baseline=before, change=change)
