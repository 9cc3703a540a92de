"""Dashboard "Mobility": transport and mobility — the zones' mobility index and what makes it, buses, bikes,
parking, taxis, and the air and weather they move in.

From the mobility job's ``mobility_index_5min`` (index 0 stuck .. 100 fluid, component scores 0..1) and the
stream tables ``transport_positions``, ``taxi_trips``, ``air_quality_observations``, ``weather_observations``,
with route names from the reference table ``routes``.
"""

from __future__ import annotations

from typing import Any

from grafana.city import in_zones, zone_variable
from grafana.panels import dashboard, sql, stat, table, timeseries

UID = "smartcity-mobility"
INDEX = f"FROM mobility_index_5min WHERE $__timeFilter(window_start) AND {in_zones()}"
FIVE_MINUTES = dict(min_interval="5m")


def _per_window(value: str) -> str:
    return f"SELECT $__timeGroupAlias(window_start, '5m'), {value} {INDEX} GROUP BY 1 ORDER BY 1"


def _by_zone(value: str) -> str:
    return f"SELECT $__timeGroupAlias(window_start, $__interval), zone_id AS metric, {value} {INDEX} GROUP BY 1, 2 ORDER BY 1"


def _observed(table_name: str, value: str, metric: str | None = None) -> str:
    """A stream table's ``value`` per interval in the chosen zones, one series per ``metric`` when given."""
    series = f", {metric} AS metric" if metric else ""
    return (f"SELECT $__timeGroupAlias(observed_at, $__interval){series}, {value} FROM {table_name} "
            f"WHERE $__timeFilter(observed_at) AND {in_zones()} GROUP BY 1{', 2' if metric else ''} ORDER BY 1")


def _now() -> list[dict[str, Any]]:
    return [
        stat("Mobility index", sql(_per_window('avg(mobility_index) AS "mobility index"')), unit="none",
             thresholds=((None, "red"), (40, "yellow"), (60, "green")),
             description="Mean over the zones, 0 stuck .. 100 fluid, latest 5-minute window.", **FIVE_MINUTES),
        stat("Bus delay", sql(_per_window('avg(mean_bus_delay_s) AS "bus delay"')), unit="s",
             thresholds=((120, "yellow"), (300, "red")), description="Mean positive delay of the buses.",
             **FIVE_MINUTES),
        stat("Bikes available", sql(_per_window('sum(bikes_available)::float / nullif(sum(bike_docks), 0) AS bikes')),
             unit="percentunit", thresholds=((None, "red"), (0.1, "yellow"), (0.25, "green")),
             description="Bikes available out of the docks, over the station reports.", **FIVE_MINUTES),
        stat("Parking occupancy",
             sql(_per_window('sum(parking_occupied)::float / nullif(sum(parking_spots), 0) AS "parking occupancy"')),
             unit="percentunit", thresholds=((0.85, "yellow"), (0.95, "red")), **FIVE_MINUTES),
        stat("Taxi trips waiting", sql(_per_window('sum(taxi_waiting_trips) AS "waiting trips"')), unit="short",
             description="Distinct trips seen waiting for their pickup.", **FIVE_MINUTES),
        stat("Air quality (CAQI)", sql(_per_window('avg(mean_caqi) AS caqi')), unit="none",
             thresholds=((50, "yellow"), (75, "orange"), (100, "red")), **FIVE_MINUTES),
    ]


def _index() -> list[dict[str, Any]]:
    latest = (
        "SELECT zone_id AS zone, window_start AS \"window\", mobility_index AS \"mobility index\", "
        "traffic_score AS traffic, transit_score AS transit, bikes_score AS bikes, parking_score AS parking, "
        "taxi_score AS taxi, air_score AS air, event_count AS events "
        f"FROM (SELECT DISTINCT ON (zone_id) * {INDEX} ORDER BY zone_id, window_start DESC) latest "
        "ORDER BY mobility_index ASC NULLS LAST")
    return [
        timeseries("Mobility index by zone", sql(_by_zone("avg(mobility_index) AS mobility")), unit="none",
                   minimum=0, maximum=100, **FIVE_MINUTES),
        timeseries("Component scores",
                   sql(_per_window("avg(traffic_score) AS traffic, avg(transit_score) AS transit, avg(bikes_score) "
                                   "AS bikes, avg(parking_score) AS parking, avg(taxi_score) AS taxi, avg(air_score) "
                                   "AS air")),
                   unit="none", minimum=0, maximum=1, description="Each 0 (bad) .. 1 (good), mean over the zones.",
                   **FIVE_MINUTES),
        table("Zones in their latest window (worst first)", sql(latest, table=True), height=8),
    ]


def _transit() -> list[dict[str, Any]]:
    routes = (
        "SELECT coalesce(r.short_name, p.route_id) AS route, r.long_name AS name, "
        "count(DISTINCT p.vehicle_id) AS vehicles, avg(p.delay) AS \"mean delay (s)\", "
        "percentile_cont(0.9) WITHIN GROUP (ORDER BY p.delay) AS \"p90 delay (s)\", max(p.delay) AS \"max delay (s)\" "
        "FROM transport_positions p LEFT JOIN routes r ON r.route_id = p.route_id "
        f"WHERE $__timeFilter(p.observed_at) AND {in_zones('p.zone_id')} "
        "GROUP BY 1, 2 ORDER BY 4 DESC LIMIT 20")
    by_route = (
        "SELECT $__timeGroupAlias(p.observed_at, $__interval), coalesce(r.short_name, p.route_id) AS metric, "
        "avg(p.delay) AS delay FROM transport_positions p LEFT JOIN routes r ON r.route_id = p.route_id "
        f"WHERE $__timeFilter(p.observed_at) AND {in_zones('p.zone_id')} GROUP BY 1, 2 ORDER BY 1")
    return [
        timeseries("Bus delay by route", sql(by_route), unit="s", description="Mean delay of the route's vehicle "
                   "positions (negative: early)."),
        timeseries("Vehicles reporting by type",
                   sql(_observed("transport_positions", "count(DISTINCT vehicle_id) AS vehicles", "vehicle_type")),
                   unit="short", minimum=0),
        table("Routes by mean delay", sql(routes, table=True), height=8),
    ]


def _shared() -> list[dict[str, Any]]:
    return [
        timeseries("Bike availability by zone",
                   sql(_by_zone("sum(bikes_available)::float / nullif(sum(bike_docks), 0) AS bikes")),
                   unit="percentunit", minimum=0, maximum=1, width=8, **FIVE_MINUTES),
        timeseries("Parking occupancy by zone",
                   sql(_by_zone("sum(parking_occupied)::float / nullif(sum(parking_spots), 0) AS occupancy")),
                   unit="percentunit", minimum=0, maximum=1, width=8, thresholds=((0.95, "red"),), **FIVE_MINUTES),
        timeseries("Taxi trips by phase",
                   sql(_observed("taxi_trips", "count(DISTINCT entity_id) AS trips", "trip_status")), unit="short",
                   minimum=0, width=8, description="Distinct trips seen approaching the pickup, carrying the "
                   "passenger, or completed."),
    ]


def _environment() -> list[dict[str, Any]]:
    return [
        timeseries("Air quality index by zone",
                   sql(_observed("air_quality_observations", "avg(air_quality_index) AS caqi", "zone_id")),
                   unit="none", minimum=0, width=8, thresholds=((50, "yellow"), (100, "red"))),
        timeseries("Temperature", sql(_observed("weather_observations", "avg(temperature) AS temperature")),
                   unit="celsius", width=8),
        timeseries("Precipitation and wind",
                   sql(_observed("weather_observations", "avg(precipitation) AS \"rain, past hour (mm)\", "
                                 "avg(wind_speed) AS \"wind (m/s)\"")),
                   unit="none", width=8),
    ]


def mobility() -> dict[str, Any]:
    return dashboard(
        UID, "Smart city — Mobility",
        "Transport and mobility: the zones' mobility index, buses, bikes, parking, taxis, air and weather.",
        [("Now", _now()), ("Mobility index", _index()), ("Public transport", _transit()),
         ("Bikes, parking, taxis", _shared()), ("Environment", _environment())],
        variables=[zone_variable()],
    )
