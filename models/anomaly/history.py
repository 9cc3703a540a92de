"""What the anomaly detectors judge, by target, and the stored windows of it as a detector frame.

A target is one kind of series of the traffic job's 5-minute aggregates, all three metrics at once::

    anomaly-sensor    traffic_sensor_5min    per sensor_id    (what the traffic-windows events announce)
    anomaly-segment   traffic_segment_5min   per segment_id

:func:`load_frame` reads a time range of a target, for a few series (serving) or all of them (training), as the
long frame every :class:`~models.anomaly.base.Detector` takes (:data:`~models.anomaly.base.FRAME_COLUMNS`), with
each series' ``road_class`` (its road segment's, in the simulated city's network; ``unknown`` elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

import pandas as pd

from models.anomaly.base import FRAME_COLUMNS, METRICS, UNKNOWN_CLASS
from models.panel import BadSeriesInput
from models.targets import _ids_param, _member, _utc
from smartcity.backends.database import Database

DEFAULT_TARGET = "anomaly-sensor"


@dataclass(frozen=True)
class AnomalyTarget:
    """The series of one 5-minute aggregate table, per ``key``."""

    name: str
    table: str
    key: str

    @property
    def per_segment(self) -> bool:
        return self.key == "segment_id"


ANOMALY_TARGETS = {target.name: target for target in (
    AnomalyTarget("anomaly-sensor", "traffic_sensor_5min", "sensor_id"),
    AnomalyTarget("anomaly-segment", "traffic_segment_5min", "segment_id"),
)}


def anomaly_target(name: str) -> AnomalyTarget:
    """The target called ``name``; BadSeriesInput (field ``target``) lists the known names."""
    try:
        return ANOMALY_TARGETS[name]
    except KeyError:
        raise BadSeriesInput("target", f"unknown target {name!r}; known: {', '.join(ANOMALY_TARGETS)}") from None


def load_frame(database: Database, target: AnomalyTarget | str, since: datetime, until: datetime,
               series_ids: list[str] | None = None) -> pd.DataFrame:
    """The windows of ``target`` that started in ``[since, until)`` (of ``series_ids`` only, when given), sorted
    by series and time: :data:`FRAME_COLUMNS`, ``segment_id`` and ``road_class``."""
    target = anomaly_target(target) if isinstance(target, str) else target
    params = {"since": _utc(since), "until": _utc(until)}
    where = "window_start >= :since AND window_start < :until"
    if series_ids is not None:
        where += f" AND {_member(database, target.key)}"
        params["ids"] = _ids_param(database, series_ids)
    columns = [*FRAME_COLUMNS, "segment_id"]
    rows = database.query(f"SELECT {target.key} AS series_id, window_start, {', '.join(METRICS)}, segment_id "
                          f"FROM {target.table} WHERE {where}", params)
    frame = pd.DataFrame(rows, columns=columns)
    return with_road_class(as_frame(frame))


def as_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored windows as a detector frame: UTC ``window_start``, float metrics, sorted by series and time."""
    frame = frame.assign(window_start=pd.to_datetime(frame["window_start"], utc=True, format="ISO8601"))
    for metric in METRICS:
        frame[metric] = pd.to_numeric(frame[metric]).astype("float64")
    return frame.sort_values(["series_id", "window_start"], kind="stable").reset_index(drop=True)


def with_road_class(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the ``road_class`` of each row's ``segment_id``."""
    classes = road_classes()
    return frame.assign(road_class=[classes.get(segment, UNKNOWN_CLASS) for segment in frame["segment_id"]])


@cache
def road_classes() -> dict[str, str]:
    """Road segment id -> road class in the simulated city (read once); empty where its network is not available."""
    from models.anomaly.base import segment_road_classes

    try:
        return segment_road_classes()
    except (ImportError, OSError, KeyError, ValueError):
        return {}
