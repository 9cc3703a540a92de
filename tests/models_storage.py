"""Stored history for the forecasting tests: a prepared SQLite database and rows of the platform's tables.

:func:`prepared_settings` gives settings whose database (migrated by ``prepare_storage``) and object store live
in a temporary folder; :func:`store_segment_panel` writes a panel as ``traffic_segment_5min`` rows (the panel's
values as both speed and flow), :func:`store_incident` and :func:`store_weather` the covariates' tables;
:func:`stored_history` all of it at once. :class:`Handicapped` is a model that promotion must refuse, :class:`Broken` one that fails to train.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from models.baselines import Persistence
from models.panel import Panel
from smartcity.backends.database import Database, open_database
from smartcity.settings import Settings
from smartcity.storage.prepare import prepare_storage
from tests.models_helpers import synthetic_panel

SEGMENT_COLUMNS = ("segment_id", "window_start", "window_end", "zone_id", "sensor_count", "event_count", "flow",
                   "flow_per_hour", "mean_speed_kmh", "mean_occupancy", "congestion_index", "last_event_at",
                   "updated_at")


def prepared_settings(folder: Path) -> Settings:
    settings = Settings(database_url=f"sqlite:///{folder / 'smartcity.db'}", objects_url=f"file://{folder / 'objects'}",
                        secrets_dir=folder / "secrets")
    (folder / "secrets").mkdir(parents=True, exist_ok=True)
    prepare_storage(settings)
    return settings


def _insert(db: Database, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})", rows)


def store_segment_panel(db: Database, panel: Panel) -> None:
    """Every finite value of ``panel`` as a ``traffic_segment_5min`` window of its series (a segment id)."""
    rows = []
    for row, segment in enumerate(panel.series_ids):
        for step, moment in enumerate(panel.times()):
            value = panel.values[row, step]
            if np.isfinite(value):
                start = moment.to_pydatetime()
                rows.append(dict(zip(SEGMENT_COLUMNS, (
                    segment, start, start + timedelta(minutes=panel.step_min), "zone-1", 1, 10, 10, float(value),
                    float(value), 0.2, 0.1, start, start))))
    _insert(db, "traffic_segment_5min", rows)


def store_incident(db: Database, entity: str, segment: str, reports: list[tuple[datetime, datetime, datetime | None]],
                   alert_source: str = "test") -> None:
    """One incident's reports, each ``(observed_at, valid_from, valid_to)``."""
    _insert(db, "incident_reports", [{
        "event_id": f"{entity}-{n}", "entity_id": entity, "observed_at": observed, "category": "traffic",
        "sub_category": "carAccident", "severity": "medium", "status": "active", "description": "test", "lon": 0.0,
        "lat": 0.0, "zone_id": "zone-1", "segment_id": segment, "lane_id": 0, "date_issued": observed,
        "valid_from": valid_from, "valid_to": valid_to, "alert_source": alert_source,
    } for n, (observed, valid_from, valid_to) in enumerate(reports)])


def store_weather(db: Database, observations: list[tuple[datetime, float]], station: str = "station-1") -> None:
    """Observations ``(observed_at, precipitation mm over the past hour)`` of one station."""
    _insert(db, "weather_observations", [{
        "event_id": f"{station}-{n}", "entity_id": station, "observed_at": observed, "name": station, "lon": 0.0,
        "lat": 0.0, "zone_id": "zone-1", "temperature": 10.0, "relative_humidity": 0.5,
        "atmospheric_pressure": 1000.0, "precipitation": rain, "wind_speed": 1.0, "wind_direction": 0.0,
        "weather_type": "rain" if rain else "clear",
    } for n, (observed, rain) in enumerate(observations)])


class Handicapped(Persistence):
    """Persistence made deliberately worse (its P50 is off by a constant): a model promotion must refuse."""

    name = "handicapped"
    bias = 15.0

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        return super().predict(panel, origins) + self.bias


class Broken(Persistence):
    """A model whose training fails: a run must go on with the others."""

    name = "broken"

    def fit(self, panel: Panel, train_end: int) -> Broken:
        raise RuntimeError("diverged")


def connected_segments(count: int) -> list[str]:
    """``count`` segment ids of the road network, each joined to one before it where possible (sorted)."""
    try:
        from smartcity.simulator.network import neighbours
        links = neighbours()
    except ImportError:
        return [f"urn:ngsi-ld:RoadSegment:s{i}" for i in range(count)]
    chosen = [next(segment for segment in sorted(links) if links[segment]["downstream"])]
    while len(chosen) < count:
        around = sorted({o for s in chosen for side in ("upstream", "downstream") for o in links[s][side]} - set(chosen))
        chosen.append(around[0] if around else next(s for s in sorted(links) if s not in chosen))
    return sorted(chosen)


def stored_history(folder: Path, days: int = 6, n_series: int = 6, start: str = "2024-01-04T00:00:00Z") -> tuple[Settings, Panel]:
    """Prepared settings whose database holds ``days`` days of 5-minute synthetic segment history (from a Thursday:
    the last day, the usual holdout, is a weekday like most of the training), and that history's panel."""
    settings = prepared_settings(folder)
    panel = synthetic_panel(n_series=n_series, days=days, step_min=5, phi=0.97, sigma=0.3, seed=1, start=start)
    panel.series_ids = connected_segments(n_series)
    db = open_database(settings.database_url)
    try:
        store_segment_panel(db, panel)
    finally:
        db.close()
    return settings, panel
