"""``/v1/traffic/forecast``: the forecasts the ``forecast-traffic`` function issued, and their live accuracy.

Both read ``traffic_forecasts`` (migration 0300). An entity's forecast is the set of rows of its newest origin:
the served model's P10/P50/P90 per horizon, beside the historical average the function issued for the same
origin. Accuracy is the mean absolute error of the forecasts whose window has closed (``abs_error`` is filled in
when the actual arrives) over the last hours, per model and horizon: the served model and the historical average
on the same windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field

from smartcity.api.problems import not_found
from smartcity.api.timeseries import sql_time
from smartcity.backends.database import Database

BASELINE = "historical-average"


class HorizonForecast(BaseModel):
    horizon_min: int
    target_time: datetime = Field(description="Start of the 5-minute window forecast")
    p10: float
    p50: float
    p90: float


class ModelForecast(BaseModel):
    model: str
    model_version: str
    forecasts: list[HorizonForecast]


class EntityForecast(BaseModel):
    """The newest forecasts of one road segment or sensor."""

    target: str = Field(description="What is forecast: segment-speed, segment-flow, sensor-speed, sensor-flow")
    entity_id: str
    origin: datetime = Field(description="Start of the last observed window the forecasts start from")
    issued_at: datetime
    served: ModelForecast = Field(description="The promoted model's forecasts")
    baseline: ModelForecast | None = Field(description="The historical average for the same origin")


class HorizonAccuracy(BaseModel):
    model: str
    horizon_min: int
    mae: float = Field(description="Mean absolute error of the P50 over the scored forecasts")
    coverage: float = Field(description="Share of actuals inside P10..P90")
    forecasts: int = Field(description="How many forecasts were scored")


class ForecastAccuracy(BaseModel):
    target: str
    since: datetime = Field(description="Forecasts whose window started at or after this are counted")
    horizons: list[HorizonAccuracy]


def latest_forecast(database: Database, target: str, entity_id: str) -> EntityForecast:
    """The newest origin's forecasts of ``entity_id``; 404 when the function has issued none."""
    rows = database.query(
        "SELECT * FROM traffic_forecasts WHERE target = :target AND entity_id = :entity AND origin = ("
        "SELECT max(origin) FROM traffic_forecasts WHERE target = :target AND entity_id = :entity) "
        "ORDER BY model, horizon_min", {"target": target, "entity": entity_id})
    if not rows:
        raise not_found(f"forecast of {target} for {entity_id}")
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    served = [model for model in by_model if model != BASELINE]
    baseline = _model_forecast(by_model[BASELINE]) if BASELINE in by_model else None
    first = rows[0]
    return EntityForecast(target=target, entity_id=entity_id, origin=first["origin"],
                          issued_at=max(row["issued_at"] for row in rows),
                          served=_model_forecast(by_model[served[0]]) if served else baseline,
                          baseline=baseline if served else None)


def _model_forecast(rows: list[dict[str, Any]]) -> ModelForecast:
    return ModelForecast(model=rows[0]["model"], model_version=rows[0]["model_version"], forecasts=[
        HorizonForecast(**{key: row[key] for key in ("horizon_min", "target_time", "p10", "p50", "p90")})
        for row in rows])


def forecast_accuracy(database: Database, target: str, hours: float, now: datetime | None = None) -> ForecastAccuracy:
    """Rolling MAE and P10-P90 coverage per model and horizon over the last ``hours``."""
    since = (now or datetime.now(timezone.utc)) - timedelta(hours=hours)
    rows = database.query(
        "SELECT model, horizon_min, avg(abs_error) AS mae, "
        "avg(CASE WHEN actual >= p10 AND actual <= p90 THEN 1.0 ELSE 0.0 END) AS coverage, count(*) AS forecasts "
        "FROM traffic_forecasts WHERE target = :target AND abs_error IS NOT NULL AND target_time >= :since "
        "GROUP BY model, horizon_min ORDER BY horizon_min, model", {"target": target, "since": sql_time(since)})
    return ForecastAccuracy(target=target, since=since, horizons=[HorizonAccuracy(**row) for row in rows])
