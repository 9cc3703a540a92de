"""Job ``anomalies``: flags a sensor's finished 5-minute window whose speed or occupancy is far off its usual,
and publishes every finished window on ``traffic-windows``, where the forecasting function picks it up.

The windows are the traffic job's per-sensor aggregates (same readings, same formulas), in append mode: a
window comes out once, when the watermark has passed its end, so it is never judged on part of its data.

Its baseline is the sensor's own history in ``traffic_sensor_5min``: the windows of the last
:data:`BASELINE_DAYS` days that started in the same hour of the day, city time (``city().timezone``). With at least
:data:`MIN_BASELINE_WINDOWS` of them, the robust z-score (:func:`streaming.indices.robust_z`, median and MAD)
flags an unusually low ``mean_speed_kmh`` or an unusually high ``mean_occupancy``, both of which mean
congestion (|z| > 3.5). Each flagged window is upserted into ``traffic_anomalies`` (one row per metric) and
published on ``incidents`` as an ``Alert`` (``trafficJam``), a CloudEvent whose id is fixed by the sensor and the
window, so that a replayed micro-batch publishes the same id again and consumers drop the copy.

Every finished window, flagged or not, is also published once on ``traffic-windows`` as a
:class:`~smartcity.events.derived.TrafficWindow` (id fixed by sensor and window, keyed by road segment so that
one segment's windows stay in order): the trigger of the ``forecast-traffic`` function.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame

from smartcity.backends.database import Database
from smartcity.events import Alert, Location, city, stream_for_topic
from smartcity.events.derived import TRAFFIC_WINDOWS, TrafficWindow
from smartcity.runtime.readings import publish_event, reading_event, window_closed_event
from smartcity.storage.upsert import upsert
from streaming import metrics
from streaming.indices import ROBUST_Z_THRESHOLD, median_absolute_deviation, robust_z
from streaming.runner import Job, StreamingContext
from streaming.sinks import collect_records
from streaming.traffic_windows import TOPIC, finish_measures, sensor_attributes, sensor_readings, traffic_measures

BASELINE_DAYS = 28
MIN_BASELINE_WINDOWS = 6
ALERT_SOURCE = "/smartcity/streaming/anomalies"
WINDOW_SOURCE = "/smartcity/streaming/traffic-windows"
# metric -> the sign of z that means congestion
WATCHED_METRICS = {"mean_speed_kmh": -1, "mean_occupancy": +1}
ANOMALY_COLUMNS = (
    "sensor_id", "window_start", "metric", "window_end", "segment_id", "zone_id", "value", "baseline_median",
    "baseline_mad", "baseline_samples", "robust_z", "severity", "alert_id", "detected_at",
)


@dataclass(frozen=True)
class Anomaly:
    metric: str
    value: float
    baseline: list[float]
    z: float


def severity(z: float) -> str:
    """Alert severity by how far off the window is: |z| up to 5 low, up to 8 medium, beyond high."""
    size = abs(z)
    return "low" if size <= 5 else "medium" if size <= 8 else "high"


def time_slot(moment: datetime) -> int:
    """The hour of the day, city time, that a window starting at ``moment`` belongs to."""
    return moment.astimezone(ZoneInfo(city().timezone)).hour


def find_anomalies(window: dict, history: list[dict]) -> list[Anomaly]:
    """The watched metrics of ``window`` that are congestion-side outliers against ``history`` (same slot)."""
    found = []
    for metric, congested_sign in WATCHED_METRICS.items():
        value = window[metric]
        baseline = [row[metric] for row in history if row[metric] is not None]
        if value is None or len(baseline) < MIN_BASELINE_WINDOWS:
            continue
        z = robust_z(value, baseline)
        if z is not None and z * congested_sign > ROBUST_Z_THRESHOLD:
            found.append(Anomaly(metric, value, baseline, z))
    return found


def sensor_history(db: Database, sensors: list[str], since: datetime, until: datetime) -> dict[str, list[dict]]:
    """The sensors' windows that started in ``[since, until)``, per sensor."""
    members = "sensor_id = ANY(:ids)" if db.dialect == "postgresql" else "sensor_id IN (SELECT value FROM json_each(:ids))"
    rows = db.query(
        f"SELECT sensor_id, window_start, mean_speed_kmh, mean_occupancy FROM traffic_sensor_5min "
        f"WHERE {members} AND window_start >= :since AND window_start < :until",
        {"ids": sensors if db.dialect == "postgresql" else json.dumps(sensors), "since": since, "until": until},
    )
    history: dict[str, list[dict]] = {}
    for row in rows:
        start = row["window_start"]
        row["window_start"] = datetime.fromisoformat(start) if isinstance(start, str) else start
        history.setdefault(row["sensor_id"], []).append(row)
    return history


def alert_for(window: dict, anomalies: list[Anomaly]) -> Alert:
    """The incident an anomalous window reports: a traffic jam on the sensor's segment and lane."""
    key = f"{window['sensor_id']}|{window['window_start'].isoformat()}"
    worst = max(anomalies, key=lambda anomaly: abs(anomaly.z))
    details = "; ".join(
        f"{a.metric} {a.value:.2f} against a usual {median_absolute_deviation(a.baseline)[0]:.2f} (robust z {a.z:+.1f})"
        for a in anomalies
    )
    return Alert(
        id=Alert.make_id(f"anomaly-{hashlib.sha256(key.encode()).hexdigest()[:24]}"),
        dateObserved=window["window_end"], category="traffic", subCategory="trafficJam", severity=severity(worst.z),
        status="active",
        description=f"Unusual congestion at sensor {window['sensor_id']} between "
                    f"{window['window_start']:%H:%M} and {window['window_end']:%H:%M} UTC: {details}",
        location=Location.at(window["lon"], window["lat"]), zone=window["zone_id"],
        refRoadSegment=window["segment_id"], laneId=window["lane_id"], dateIssued=window["window_end"],
        validFrom=window["window_start"], validTo=window["window_end"], alertSource=ALERT_SOURCE,
    )


def judge_windows(db: Database, windows: list[dict], now: datetime) -> tuple[list[dict], list[Alert]]:
    """Judge finished sensor windows against their same-slot history in ``db``: the ``traffic_anomalies`` rows
    (one per flagged metric, :data:`ANOMALY_COLUMNS`, ``detected_at`` = ``now``) and one alert per flagged window.

    Shared by this job and :func:`tests.api_samples.sample_streaming.flag_anomalies`; writes nothing."""
    if not windows:
        return [], []
    earliest = min(window["window_start"] for window in windows)
    latest = max(window["window_start"] for window in windows)
    history = sensor_history(db, sorted({window["sensor_id"] for window in windows}),
                             earliest - timedelta(days=BASELINE_DAYS), latest)
    rows, alerts = [], []
    for window in windows:
        start = window["window_start"]
        same_slot = [row for row in history.get(window["sensor_id"], [])
                     if start - timedelta(days=BASELINE_DAYS) <= row["window_start"] < start
                     and time_slot(row["window_start"]) == time_slot(start)]
        anomalies = find_anomalies(window, same_slot)
        if not anomalies:
            continue
        alert = alert_for(window, anomalies)
        alerts.append(alert)
        for anomaly in anomalies:
            centre, mad = median_absolute_deviation(anomaly.baseline)
            row = {**window, "metric": anomaly.metric, "value": anomaly.value, "baseline_median": centre,
                   "baseline_mad": mad, "baseline_samples": len(anomaly.baseline), "robust_z": anomaly.z,
                   "severity": severity(anomaly.z), "alert_id": alert.id, "detected_at": now}
            rows.append({column: row[column] for column in ANOMALY_COLUMNS})
    return rows, alerts


def build(ctx: StreamingContext) -> DataFrame:
    readings = sensor_readings(ctx, JOB.name)
    aggregates = readings.groupBy("window_end", "sensor_id").agg(
        *traffic_measures(), *sensor_attributes()
    )
    return finish_measures(aggregates)


def write(ctx: StreamingContext, batch: DataFrame, batch_id: int) -> None:
    windows = collect_records(batch)
    if not windows:
        return
    rows, alerts = judge_windows(ctx.database, windows, datetime.now(timezone.utc))
    incidents = stream_for_topic("incidents")
    for alert in alerts:
        publish_event(ctx.bus, ctx.topic(incidents.topic), reading_event(incidents, alert, ALERT_SOURCE, id=alert.id))
    for window in windows:
        announced = window_closed_event(TrafficWindow.model_validate(window), WINDOW_SOURCE)
        publish_event(ctx.bus, ctx.topic(TRAFFIC_WINDOWS.topic), announced)
    for row in rows:
        metrics.ANOMALIES.labels(row["metric"]).inc()
    ctx.bus.flush()
    upsert(ctx.database, "traffic_anomalies", rows, key=("sensor_id", "window_start", "metric"))


JOB = Job(
    name="anomalies",
    topics=(TOPIC,),
    output_mode="append",
    build=build,
    write=write,
    description="Robust z-score of each finished sensor window against its time-of-day baseline; alerts on incidents",
    # 2: deduplicated events, windows grouped by their end (streaming.runner.counted_once); 3: the events' key
    # became two 64-bit hashes (streaming.sources.event_key), the state moved to RocksDB (streaming.session)
    state_version=3,
)
