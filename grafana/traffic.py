"""Dashboard "Traffic": traffic management — speed, flow and congestion per zone, where it is congested, and why.

From the traffic job's 5-minute aggregates (``traffic_segment_5min``, ``traffic_sensor_5min``), the anomaly
flags (``traffic_anomalies``), the incident workflow (``incident_cases``), the road reference data
(``road_segments``), the forecasts with their live accuracy (``traffic_forecasts``, and the forecasting
function's ``smartcity_forecast_abs_error`` summary), and the anomaly models' scores and hotspots
(``anomaly_scores``, ``traffic_hotspots``). The congestion index is 0 (free flow) .. 1 (jammed).
"""

from __future__ import annotations

from typing import Any

from grafana.city import in_zones, zone_variable
from grafana.panels import dashboard, geomap, promql, sql, stat, table, timeseries

UID = "smartcity-traffic"
CONGESTED = 0.7  # congestion index from which a segment counts as congested (and the alert fires for a zone)
CONGESTION_STEPS = ((0.4, "yellow"), (CONGESTED, "red"))
SEGMENTS = f"FROM traffic_segment_5min WHERE $__timeFilter(window_start) AND {in_zones()}"


def _per_window(value: str) -> str:
    """One value per 5-minute window over the chosen zones' segments."""
    return f"SELECT $__timeGroupAlias(window_start, '5m'), {value} {SEGMENTS} GROUP BY 1 ORDER BY 1"


def _by_zone(value: str) -> str:
    return f"SELECT $__timeGroupAlias(window_start, $__interval), zone_id AS metric, {value} {SEGMENTS} GROUP BY 1, 2 ORDER BY 1"


def _now() -> list[dict[str, Any]]:
    now = dict(min_interval="5m")
    return [
        stat("Mean speed", sql(_per_window('avg(mean_speed_kmh) AS "mean speed"')), unit="velocitykmh",
             description="Mean of the road segments' mean speeds in the latest 5-minute window.", **now),
        stat("Congestion index", sql(_per_window('avg(congestion_index) AS "congestion index"')), unit="none",
             thresholds=CONGESTION_STEPS, description="Mean over the road segments, 0 free flow .. 1 jammed.", **now),
        stat("Flow", sql(_per_window('sum(flow_per_hour) AS "vehicles/h"')), unit="short",
             description="Vehicles per hour past the sensors, summed over the road segments.", **now),
        stat("Congested segments",
             sql(_per_window(f'count(*) FILTER (WHERE congestion_index >= {CONGESTED}) AS "congested segments"')),
             unit="short", thresholds=((1, "yellow"), (5, "red")),
             description=f"Road segments whose congestion index is at least {CONGESTED}.", **now),
        stat("Anomalies",
             sql(f"SELECT $__timeGroupAlias(window_start, '5m'), count(*) AS anomalies FROM traffic_anomalies "
                 f"WHERE $__timeFilter(window_start) AND {in_zones()} GROUP BY 1 ORDER BY 1"),
             unit="short", thresholds=((1, "yellow"),), description="Sensor windows flagged as unusual.", **now),
        stat("Open incidents",
             sql(f"SELECT now() AS \"time\", count(*) AS open FROM incident_cases WHERE state <> 'resolved' "
                 f"AND {in_zones()}"),
             unit="short", thresholds=((1, "yellow"), (5, "red"))),
    ]


def _trends() -> list[dict[str, Any]]:
    trend = dict(min_interval="5m")
    return [
        timeseries("Mean speed by zone", sql(_by_zone("avg(mean_speed_kmh) AS speed")), unit="velocitykmh",
                   minimum=0, **trend),
        timeseries("Congestion index by zone", sql(_by_zone("avg(congestion_index) AS congestion")), unit="none",
                   minimum=0, maximum=1, thresholds=CONGESTION_STEPS, **trend),
        timeseries("Flow by zone",
                   sql(_by_zone("sum(flow_per_hour) / count(DISTINCT window_start) AS flow")), unit="short",
                   description="Vehicles per hour past the zone's sensors (per 5-minute window, averaged).", **trend),
        timeseries("Speed percentiles",
                   sql(_per_window('avg(speed_p50_kmh) AS "p50", avg(speed_p85_kmh) AS "p85", '
                                   'avg(speed_p95_kmh) AS "p95"')),
                   unit="velocitykmh", minimum=0,
                   description="The segments' 50th, 85th and 95th speed percentiles, averaged over segments.", **trend),
    ]


def _where() -> list[dict[str, Any]]:
    latest_sensors = (
        "SELECT DISTINCT ON (sensor_id) sensor_id AS sensor, window_start AS \"window\", lat, lon, "
        "mean_speed_kmh AS \"mean speed\", congestion_index FROM traffic_sensor_5min "
        f"WHERE $__timeFilter(window_start) AND {in_zones()} ORDER BY sensor_id, window_start DESC")
    worst_segments = (
        "SELECT coalesce(r.name, s.segment_id) AS road, s.zone_id AS zone, s.window_start AS \"window\", "
        "s.mean_speed_kmh AS \"mean speed (km/h)\", r.speed_limit_kmh AS \"limit (km/h)\", "
        "s.flow_per_hour AS \"flow (veh/h)\", s.mean_occupancy AS occupancy, s.congestion_index AS congestion "
        f"FROM (SELECT DISTINCT ON (segment_id) * {SEGMENTS} ORDER BY segment_id, window_start DESC) s "
        "LEFT JOIN road_segments r ON r.segment_id = s.segment_id ORDER BY s.congestion_index DESC LIMIT 20")
    anomalies = (
        "SELECT a.window_start AS \"window\", a.sensor_id AS sensor, coalesce(r.name, a.segment_id) AS road, "
        "a.zone_id AS zone, a.metric, a.value, a.baseline_median AS baseline, a.robust_z AS \"robust z\", "
        "a.severity FROM traffic_anomalies a LEFT JOIN road_segments r ON r.segment_id = a.segment_id "
        f"WHERE $__timeFilter(a.window_start) AND {in_zones('a.zone_id')} ORDER BY a.window_start DESC LIMIT 200")
    incidents = (
        "SELECT c.reported_at AS reported, c.category, c.severity, c.state, c.zone_id AS zone, "
        "coalesce(r.name, c.segment_id) AS road, c.description FROM incident_cases c "
        "LEFT JOIN road_segments r ON r.segment_id = c.segment_id "
        f"WHERE c.state <> 'resolved' AND {in_zones('c.zone_id')} ORDER BY c.reported_at DESC LIMIT 200")
    return [
        geomap("Sensors: congestion in their latest window", sql(latest_sensors, table=True),
               color_field="congestion_index", height=14),
        table("Most congested road segments (latest window)", sql(worst_segments, table=True), width=12, height=14,
              thresholds=CONGESTION_STEPS),
        table("Traffic anomalies", sql(anomalies, table=True), width=12, height=10,
              description="Windows whose speed or occupancy was far off the sensor's usual for that hour "
              "(robust z-score beyond 3.5)."),
        table("Open incidents", sql(incidents, table=True), width=12, height=10),
        timeseries("Anomalies flagged by metric",
                   promql("sum by (metric) (increase(smartcity_streaming_anomalies_total[$__rate_interval]))",
                          "{{metric}}"),
                   unit="short", width=24, height=6),
    ]


FORECAST_BASELINE = "historical-average"


def _forecasts() -> list[dict[str, Any]]:
    """The served model's 30-minute forecast of the city's mean segment speed against what came, and the rolling
    MAE per horizon of the served model beside the historical average (scored on the same windows)."""
    forecast_vs_actual = (
        "SELECT $__timeGroupAlias(f.target_time, '5m'), avg(f.p50) AS \"forecast P50 (30 min ahead)\", "
        "avg(f.p10) AS \"P10\", avg(f.p90) AS \"P90\", avg(f.actual) AS \"actual\" FROM traffic_forecasts f "
        f"WHERE f.target = 'segment-speed' AND f.horizon_min = 30 AND f.model <> '{FORECAST_BASELINE}' "
        "AND $__timeFilter(f.target_time) GROUP BY 1 ORDER BY 1")
    accuracy = (
        "SELECT model, horizon_min AS \"horizon (min)\", avg(abs_error) AS \"MAE (km/h)\", "
        "avg(CASE WHEN actual BETWEEN p10 AND p90 THEN 1.0 ELSE 0.0 END) AS \"P10-P90 coverage\", "
        "count(*) AS forecasts FROM traffic_forecasts WHERE target = 'segment-speed' AND abs_error IS NOT NULL "
        "AND $__timeFilter(target_time) GROUP BY 1, 2 ORDER BY 2, 1")
    rolling_mae = (
        'sum by (model, horizon_min) (rate(smartcity_forecast_abs_error_sum{target="segment-speed"}[1h])) / '
        'sum by (model, horizon_min) (rate(smartcity_forecast_abs_error_count{target="segment-speed"}[1h]))')
    return [
        timeseries("Mean speed: forecast 30 minutes ahead and actual", sql(forecast_vs_actual), unit="velocitykmh",
                   minimum=0, width=12, min_interval="5m",
                   description="Mean over the road segments of the served model's forecasts for each window, "
                               "issued 30 minutes before it, and of what the window measured."),
        table("Forecast accuracy per model and horizon", sql(accuracy, table=True), width=12, height=8,
              description="Mean absolute error of the P50 over the forecasts whose window has closed, for the "
                          "served model and the historical average on the same windows."),
        timeseries("Rolling MAE (1 h) per horizon", promql(rolling_mae, "{{model}} {{horizon_min}} min"),
                   unit="velocitykmh", minimum=0, width=24, height=6),
    ]


ANOMALY_THRESHOLD = 0.999  # the default of SMARTCITY_ANOMALY_THRESHOLD: a dashed line, not the live setting
SCORES = f"FROM anomaly_scores WHERE $__timeFilter(window_start) AND {in_zones()}"


def _anomalies() -> list[dict[str, Any]]:
    """The anomaly models' scores per window (the highest per model), the windows they flagged, and the current
    hotspots of anomalies and incidents."""
    highest = (f"SELECT $__timeGroupAlias(window_start, '5m'), model AS metric, max(score) AS score {SCORES} "
               "GROUP BY 1, 2 ORDER BY 1")
    flagged = (
        "SELECT a.window_start AS \"window\", a.entity_id AS entity, coalesce(r.name, a.segment_id) AS road, "
        "a.zone_id AS zone, a.model, a.model_version AS version, a.score, a.basis, a.contributions, "
        "a.alert_id AS incident FROM anomaly_scores a LEFT JOIN road_segments r ON r.segment_id = a.segment_id "
        f"WHERE a.flagged AND $__timeFilter(a.window_start) AND {in_zones('a.zone_id')} "
        "ORDER BY a.window_start DESC, a.score DESC LIMIT 200")
    hotspots = (
        "SELECT id AS hotspot, zone_id AS zone, size, anomalies, incidents, since, last_seen AS \"last seen\", "
        f"lat, lon FROM traffic_hotspots WHERE active AND {in_zones()} ORDER BY size DESC, since")
    return [
        timeseries("Highest anomaly score per window, by model", sql(highest), unit="percentunit", minimum=0,
                   maximum=1, thresholds=((ANOMALY_THRESHOLD, "red"),), width=12, min_interval="5m",
                   description="Calibrated scores (0 usual .. 1 rarer than every normal training window) of the "
                               f"windows the detect-anomalies function scored; {ANOMALY_THRESHOLD} and above is "
                               "reported as an incident."),
        geomap("Hotspots of anomalies and incidents", sql(hotspots, table=True), color_field="size", minimum=1,
               maximum=10, width=12, height=8,
               description="Centroids of the current clusters (DBSCAN in space and time over the last hour)."),
        table("Windows flagged by the anomaly models", sql(flagged, table=True), width=12, height=10,
              description="Model, version, score and the features that weighed most; each reported as an incident."),
        table("Current hotspots", sql(hotspots, table=True), width=12, height=10,
              description="The members are listed by /v1/incidents/hotspots."),
    ]


def traffic() -> dict[str, Any]:
    return dashboard(
        UID, "Smart city — Traffic",
        "Traffic management: speed, flow and congestion per zone, congested roads, anomalies and incidents.",
        [("Now", _now()), ("Trends", _trends()), ("Where", _where()), ("Forecasts", _forecasts()),
         ("Anomalies", _anomalies())],
        variables=[zone_variable()],
    )
