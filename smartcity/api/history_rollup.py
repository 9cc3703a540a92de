"""A sensor's or segment's traffic history in whole-hour buckets (``1h``, ``1d``), from the hourly rollup.

The hours that lie wholly in the range are read from ``traffic_sensor_1h`` / ``traffic_segment_1h``
(:mod:`smartcity.storage.traffic_hourly`), the windows of the partial hours at either end from the 5-minute table,
each window as the sums a rollup row holds (:data:`~smartcity.storage.traffic_hourly.MEASURES`), and both
re-aggregated into buckets as :func:`smartcity.api.traffic_history.aggregate_sql` re-aggregates windows: the same
sums, so the same answer (up to the order floats are added in, far below the API's rounding). A zone's or the
city's windows are counted once however many segments have them, which hourly counts per segment cannot tell:
those scopes read the windows.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from smartcity.api.timeseries import bucket_sql, sql_time
from smartcity.storage.traffic_hourly import MEASURES, ROLLUPS, hour_ceil, hour_floor

ROLLUP_SCOPES = ("sensor", "segment")
HOUR_S = 3600


def reads_rollup(scope_kind: str, bucket_s: int) -> bool:
    return scope_kind in ROLLUP_SCOPES and bucket_s % HOUR_S == 0


def rollup_bounds(start: datetime, end: datetime) -> dict[str, datetime]:
    """The query's ``:hours_start``/``:hours_end``: the whole hours of ``[start, end)`` (an empty range at ``end``
    when there is none); the windows before and after them are read one by one."""
    first, last = hour_ceil(start), hour_floor(end)
    if last < first:
        first = last = end
    return {"hours_start": sql_time(first), "hours_end": sql_time(last)}


def weighted_mean(name: str) -> str:
    """A speed's mean weighted by the vehicles: the rollup's sums of its products and of the vehicles behind them."""
    return f"CAST(SUM({name}_x_flow) AS double precision) / NULLIF(SUM({name}_flow), 0)"


@lru_cache(maxsize=16)
def rollup_history_sql(dialect: str, window_table: str, bucket_s: int, window_s: int, percentiles: tuple[str, ...],
                       newest: str) -> str:
    """Buckets of an entity's whole hours and edge windows (the columns of
    :class:`~smartcity.api.traffic_history.AggregateBucket`, and the newest window's start as ``newest``), windows
    of ``window_s`` seconds."""
    rollup, key = ROLLUPS[window_table]
    names = ", ".join(measure.name for measure in MEASURES)
    of_windows = ", ".join(f"{measure.of_window} AS {measure.name}" for measure in MEASURES)
    hours = (f"SELECT hour_start AS moment, {names} FROM {rollup} "
             f"WHERE {key} = :scope AND hour_start >= :hours_start AND hour_start < :hours_end")
    edges = (f"SELECT window_start AS moment, {of_windows} FROM {window_table} WHERE {key} = :scope "
             f"AND (window_start >= :start AND window_start < :hours_start "
             f"OR window_start >= :hours_end AND window_start < :end)")
    speeds = ", ".join(f"{weighted_mean(name)} AS {name}" for name in percentiles)
    return f"""SELECT {bucket_sql(dialect, 'moment', bucket_s)} AS bucket_start,
        CAST(SUM(event_count) AS bigint) AS samples, CAST(SUM(flow) AS bigint) AS vehicles,
        CAST(SUM(occupancy_x_events) AS double precision) / SUM(event_count) AS occupancy,
        {weighted_mean('mean_speed_kmh')} AS average_speed_kmh, CAST(SUM(windows) AS bigint) AS windows,
        CAST(SUM(flow) AS double precision) * {HOUR_S // window_s} / SUM(windows) AS flow_per_hour,
        CAST(SUM(congestion_index_sum) AS double precision) / SUM(windows) AS congestion_index,
        MAX(congestion_index_max) AS congestion_index_max, {speeds},
        (SELECT MAX(window_start) FROM {window_table}) AS {newest}
    FROM ({hours} UNION ALL {edges}) AS parts
    GROUP BY 1 ORDER BY 1 LIMIT :fetch"""
