"""Serving anomaly scores: the promoted detector of each anomaly target, reloaded when a new version is promoted.

:class:`AnomalyService` is what the ``detect-anomalies`` function holds. Given closed sensor windows it

1. scores, for every target with a promoted detector (:data:`models.anomaly.history.ANOMALY_TARGETS`), the
   newest window of each sensor (or of each sensor's road segment) from the stored windows before it (the
   detector's :meth:`~models.anomaly.base.Detector.context_steps`); a sensor window is scored with the values
   its event carries, whether or not the traffic job has stored it yet;
2. stores every score in ``anomaly_scores`` (upsert on entity, window and model: a redelivered window rewrites
   the same row);
3. returns an :class:`~smartcity.events.Alert` for each score at or above ``threshold`` (the setting
   ``anomaly_threshold``): a ``trafficJam`` on the window's road segment, its id fixed by entity, window and
   model, carrying the score, ``detectedBy`` (model@version) and the top contributions. The function publishes
   them on ``incidents``, where the incident flow (store functions, ``incident_cases``, API, dashboards) takes
   them like any reported incident.

Every ``reload_s`` seconds at most it reads the registry's promotion pointers
(:class:`models.promoted.PromotedModels`); a changed version is loaded (JSON, skops or ONNX files: no torch) and
serves from the next batch on, without a restart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from models.anomaly.base import STEP_MIN, json_dumps
from models.anomaly.catalog import AnomalyRegistry
from models.anomaly.history import ANOMALY_TARGETS, AnomalyTarget, as_frame, load_frame, with_road_class
from models.promoted import Promoted, PromotedModels
from models.targets import DETECTED_ALERT_SOURCES
from smartcity.backends.database import Database
from smartcity.events import Alert, Location
from smartcity.events.derived import TrafficWindow
from smartcity.storage.upsert import upsert

ALERT_SOURCE = DETECTED_ALERT_SOURCES[1]
STEP = timedelta(minutes=STEP_MIN)
SCORE_KEY = ("entity_id", "window_start", "model")


class AnomalyService:
    """Scores, stored scores and alerts for every anomaly target with a promoted detector."""

    def __init__(self, database: Database, registry: AnomalyRegistry, threshold: float, reload_s: float = 30.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.database = database
        self.threshold = threshold
        self.clock = clock
        self.detectors = PromotedModels(registry, ANOMALY_TARGETS, reload_s)

    def handle(self, windows: list[TrafficWindow]) -> list[Alert]:
        """Score the newest window of each entity in ``windows`` with every served detector; store the scores,
        return the alerts of those at or above the threshold."""
        rows: list[dict[str, Any]] = []
        for served in self.detectors.current().values():
            rows += self._score(served, newest_windows(windows, ANOMALY_TARGETS[served.target]))
        store_scores(self.database, rows)
        return [alert_of(row) for row in rows if row["flagged"]]

    def _score(self, served: Promoted, windows: dict[str, TrafficWindow]) -> list[dict[str, Any]]:
        target = ANOMALY_TARGETS[served.target]
        frame = self._context(target, windows, served.model.context_steps())
        scores = served.model.score(frame)
        wanted = {(entity, pd.Timestamp(window.window_start)) for entity, window in windows.items()}
        now = self.clock()
        rows = []
        for score in scores.itertuples(index=False):
            if (score.series_id, score.window_start) not in wanted or not np.isfinite(score.anomaly_score):
                continue
            window = windows[score.series_id]
            value = round(float(score.anomaly_score), 6)
            flagged = value >= self.threshold
            rows.append({
                "entity_id": score.series_id, "window_start": _utc(window.window_start), "model": score.model,
                "target": target.name, "window_end": _utc(window.window_end), "model_version": served.version,
                "score": value, "basis": score.basis, "contributions": json_dumps(score.contributions or {}),
                "flagged": flagged, "alert_id": alert_id(score.series_id, window.window_start, score.model)
                if flagged else None, "sensor_id": window.sensor_id, "segment_id": window.segment_id,
                "zone_id": window.zone_id, "lon": window.lon, "lat": window.lat, "scored_at": now,
                "detected_by": f"{served.model.name}@{served.version}",
                "lane_id": None if target.per_segment else window.lane_id})
        return rows

    def _context(self, target: AnomalyTarget, windows: dict[str, TrafficWindow], steps: int) -> pd.DataFrame:
        """The stored windows of the entities from ``steps`` before their newest one on; a sensor's newest window
        is the event's own (it may not be stored yet)."""
        starts = [window.window_start for window in windows.values()]
        frame = load_frame(self.database, target, min(starts) - steps * STEP, max(starts) + STEP, sorted(windows))
        if target.per_segment:
            return frame
        events = with_road_class(as_frame(pd.DataFrame([
            {"series_id": entity, "window_start": window.window_start, "flow_per_hour": window.flow_per_hour,
             "mean_speed_kmh": window.mean_speed_kmh, "mean_occupancy": window.mean_occupancy,
             "segment_id": window.segment_id} for entity, window in windows.items()])))
        keys = pd.MultiIndex.from_frame(frame[["series_id", "window_start"]])
        replaced = keys.isin(pd.MultiIndex.from_frame(events[["series_id", "window_start"]]))
        merged = pd.concat([frame[~replaced], events], ignore_index=True)
        return merged.sort_values(["series_id", "window_start"], kind="stable").reset_index(drop=True)


def newest_windows(windows: list[TrafficWindow], target: AnomalyTarget) -> dict[str, TrafficWindow]:
    """The newest window of each sensor in ``windows`` (or of each road segment: the newest of its sensors')."""
    newest: dict[str, TrafficWindow] = {}
    for window in windows:
        key = window.segment_id if target.per_segment else window.sensor_id
        if key not in newest or window.window_start > newest[key].window_start:
            newest[key] = window
    return newest


def alert_id(entity_id: str, window_start: datetime, model: str) -> str:
    """The id of the alert a flagged window raises: the same entity, window and model always give the same id, so
    a redelivered window publishes the same event again and consumers drop the copy."""
    key = f"{entity_id}|{_utc(window_start).isoformat()}|{model}"
    return Alert.make_id(f"anomaly-{hashlib.sha256(key.encode()).hexdigest()[:24]}")


def severity(score: float) -> str:
    """How rare the window is: rarer than 99.99 % of normal windows high, than 99.9 % medium, else low."""
    return "high" if score >= 0.9999 else "medium" if score >= 0.999 else "low"


def alert_of(row: dict[str, Any]) -> Alert:
    """The incident a flagged score reports (a row of :meth:`AnomalyService.handle`)."""
    contributions = json.loads(row["contributions"])
    weighed = ", ".join(f"{name} {weight:.2f}" for name, weight in contributions.items()) or "none"
    return Alert(
        id=row["alert_id"], dateObserved=row["window_end"], category="traffic", subCategory="trafficJam",
        severity=severity(row["score"]), status="active",
        description=f"Unusual traffic at {row['entity_id']} between {row['window_start']:%H:%M} and "
                    f"{row['window_end']:%H:%M} UTC: anomaly score {row['score']:.4f} by {row['detected_by']} "
                    f"({row['basis']} basis); weighed most: {weighed}",
        location=Location.at(row["lon"], row["lat"]), zone=row["zone_id"], refRoadSegment=row["segment_id"],
        laneId=row["lane_id"], dateIssued=row["window_end"], validFrom=row["window_start"], validTo=row["window_end"],
        alertSource=ALERT_SOURCE, anomalyScore=row["score"], detectedBy=row["detected_by"],
        contributions=contributions)


SCORE_COLUMNS = ("entity_id", "window_start", "model", "target", "window_end", "model_version", "score", "basis",
                 "contributions", "flagged", "alert_id", "sensor_id", "segment_id", "zone_id", "lon", "lat",
                 "scored_at")


def store_scores(database: Database, rows: list[dict[str, Any]]) -> int:
    """Upsert scores on (entity, window, model)."""
    return upsert(database, "anomaly_scores", [{column: row[column] for column in SCORE_COLUMNS} for row in rows],
                  key=SCORE_KEY)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
