"""Serving forecasts: the promoted model of each target, reloaded when a new version is promoted, no torch.

:class:`ForecastService` is what the ``forecast-traffic`` function holds. Given closed sensor windows it

1. scores the forecasts that targeted those windows (now that their actual is known): ``actual`` and
   ``abs_error`` in ``traffic_forecasts``, and the ``smartcity_forecast_abs_error`` summary per target, model and
   horizon (its rate of sum over rate of count is the rolling MAE);
2. forecasts each target that has a promoted model, for the windows' sensors or road segments, from their
   recent windows (:class:`models.recent.RecentWindows`: read once, then only what closed since), with the
   promoted model and with the historical average
   that every learned model carries (its ``profiles``), so both are scored on the same windows.

Every ``reload_s`` seconds at most (the setting ``forecast_reload_s``) it reads the registry's small promotion pointers; a changed version is
loaded (XGBoost's own format, or ONNX for the torch models) and used from the next batch on: no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from prometheus_client import Summary

from models.base import Forecaster
from models.baselines import HistoricalAverage
from models.registry import Registry
from models.recent import RecentWindows, rows_with_neighbours
from models.targets import TARGETS
from smartcity.backends.database import Database
from smartcity.events.derived import TrafficForecast, TrafficWindow
from smartcity.runtime.metrics import FUNCTION_METRICS
from smartcity.storage.upsert import upsert

WINDOW = timedelta(minutes=5)
log = logging.getLogger(__name__)

ABS_ERROR = Summary("smartcity_forecast_abs_error", "Absolute error of forecasts whose window has closed",
                    ["target", "model", "horizon_min"], registry=FUNCTION_METRICS)


@dataclass(frozen=True)
class ServedModel:
    target: str
    version: str
    model: Forecaster
    baseline: HistoricalAverage | None


def baseline_of(model: Forecaster) -> HistoricalAverage | None:
    """The historical average that a learned model carries (its ``profiles``, fitted on the same data), to issue
    beside it; None for a model without one (persistence), the model itself if it is the historical average."""
    if isinstance(model, HistoricalAverage) or getattr(model, "profiles", None) is None:
        return None
    baseline = HistoricalAverage(model.horizons_min, model.seed)
    baseline.step_min, baseline.profiles = model.step_min, model.profiles
    return baseline


class ForecastService:
    """Forecasts and live scoring for every target with a promoted model."""

    def __init__(self, database: Database, registry: Registry, reload_s: float = 30.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.database = database
        self.registry = registry
        self.reload_s = reload_s
        self.clock = clock
        self._served: dict[str, ServedModel] = {}
        self._checked_at = float("-inf")
        self._recent: dict[str, RecentWindows] = {}
        self._lock = threading.Lock()

    def served(self) -> dict[str, ServedModel]:
        """The promoted model of each target, re-read from the registry at most every ``reload_s`` seconds."""
        with self._lock:
            if time.monotonic() - self._checked_at >= self.reload_s:
                self._checked_at = time.monotonic()
                for target in TARGETS:
                    self._refresh(target)
            return dict(self._served)

    def _refresh(self, target: str) -> None:
        version = self.registry.promoted_version(target)
        current = self._served.get(target)
        if version is None:
            self._served.pop(target, None)
        elif current is None or current.version != version:
            model = self.registry.load(target, version)
            self._served[target] = ServedModel(target, version, model, baseline_of(model))
            log.info("serving %s version %s (%s)", target, version, model.name)

    def _recent_of(self, served: ServedModel) -> RecentWindows:
        steps = served.model.context_steps()
        recent = self._recent.get(served.target)
        if recent is None or recent.steps != steps:
            recent = self._recent[served.target] = RecentWindows(self.database, served.target, steps)
        return recent

    def handle(self, windows: list[TrafficWindow]) -> list[TrafficForecast]:
        """Score the forecasts that targeted ``windows``, then forecast from them; the new forecasts are stored
        and returned (the function publishes them)."""
        issued: list[TrafficForecast] = []
        for target, served in self.served().items():
            origins = _newest_origin_per_entity(windows, TARGETS[target].per_segment)
            recent = self._recent_of(served)
            held = recent.panel(sorted(origins), until=max(origins.values()) + WINDOW)
            panel = held.subset(rows_with_neighbours(held, set(origins)))
            self._score(target, panel, origins)
            issued += self._forecast(served, panel, origins)
        store_forecasts(self.database, issued)
        return issued

    def _forecast(self, served: ServedModel, panel, origins: dict[str, datetime]) -> list[TrafficForecast]:
        now = self.clock()
        rows = []
        by_origin: dict[datetime, list[int]] = {}
        for row, entity in enumerate(panel.series_ids):
            if entity in origins:
                by_origin.setdefault(origins[entity], []).append(row)
        for origin, members in by_origin.items():
            index = np.array([panel.index_of(pd.Timestamp(origin))])
            for forecaster in filter(None, (served.model, served.baseline)):
                quantiles = forecaster.predict(panel, index)
                for row in members:
                    for k, horizon in enumerate(forecaster.horizons_min):
                        p10, p50, p90 = quantiles[row, 0, k]
                        if not np.isfinite(p50):
                            continue
                        rows.append(TrafficForecast(
                            target=served.target, entity_id=panel.series_ids[row], origin=origin, horizon_min=horizon,
                            target_time=origin + timedelta(minutes=horizon), p10=round(float(p10), 3),
                            p50=round(float(p50), 3), p90=round(float(p90), 3), model=forecaster.name,
                            model_version=served.version, issued_at=now))
        return rows

    def _score(self, target: str, panel, origins: dict[str, datetime]) -> None:
        """Fill in actual and error of the forecasts whose target window is one of ``origins``."""
        actual_of = {}
        for row, entity in enumerate(panel.series_ids):
            if entity in origins:
                value = panel.values[row, panel.index_of(pd.Timestamp(origins[entity]))]
                if np.isfinite(value):
                    actual_of[(entity, origins[entity])] = float(value)
        if not actual_of:
            return
        pending = self.database.query(
            "SELECT entity_id, origin, horizon_min, model, target_time, p50 FROM traffic_forecasts "
            "WHERE target = :target AND target_time >= :first AND target_time <= :last AND abs_error IS NULL",
            {"target": target, "first": min(t for _, t in actual_of), "last": max(t for _, t in actual_of)})
        updates = []
        for row in pending:
            moment = _utc(row["target_time"])
            actual = actual_of.get((row["entity_id"], moment))
            if actual is None:
                continue
            error = abs(row["p50"] - actual)
            ABS_ERROR.labels(target, row["model"], str(row["horizon_min"])).observe(error)
            updates.append({"target": target, "entity_id": row["entity_id"], "origin": _utc(row["origin"]),
                            "horizon_min": row["horizon_min"], "model": row["model"], "actual": actual,
                            "abs_error": error})
        if updates:
            self.database.executemany(
                "UPDATE traffic_forecasts SET actual = :actual, abs_error = :abs_error WHERE target = :target "
                "AND entity_id = :entity_id AND origin = :origin AND horizon_min = :horizon_min AND model = :model",
                updates)


def _newest_origin_per_entity(windows: Iterable[TrafficWindow], per_segment: bool) -> dict[str, datetime]:
    """The newest window start of each sensor (or of each sensor's road segment) in ``windows``."""
    origins: dict[str, datetime] = {}
    for window in windows:
        key = window.segment_id if per_segment else window.sensor_id
        start = window.window_start.astimezone(timezone.utc)
        if key not in origins or start > origins[key]:
            origins[key] = start
    return origins


def _utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc)


FORECAST_COLUMNS = ("target", "entity_id", "origin", "horizon_min", "model", "target_time", "model_version",
                    "p10", "p50", "p90", "issued_at")
FORECAST_KEY = FORECAST_COLUMNS[:5]


def store_forecasts(database: Database, forecasts: list[TrafficForecast]) -> int:
    """Upsert forecasts on (target, entity, origin, horizon, model): a redelivered window rewrites the same rows."""
    return upsert(database, "traffic_forecasts", [
        {column: _utc(value) if isinstance(value := getattr(forecast, column), datetime) else value
         for column in FORECAST_COLUMNS} for forecast in forecasts], key=FORECAST_KEY)
