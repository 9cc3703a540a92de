"""The 5-minute aggregate rows of the history: what each loop counts, and its segment's window over its loops.

Per loop (the live simulation's induction loops, ids and places from the city file), from what the model's
loop view says of its segment: a lane's share of the flow (the right lane of a multi-lane road carries a little
less; each lane its own fixed factor), over-dispersed Poisson counts (negative binomial), a speed with lane-level
noise (the left lanes a little faster), percentiles from a log-normal spread of the vehicles' speeds that widens
in queues (stop-and-go), occupancy with a little noise. A segment's window aggregates its loops the way the
streaming job does (:mod:`streaming.traffic_windows`): flow summed, speed weighted by the vehicles, occupancy the
mean over the loops, the congestion index of :func:`streaming.indices.congestion_index`; its percentiles are the
loops' weighted by their vehicles (the job's are over the pooled readings: equal for the many one-lane roads).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from smartcity.city.model import TrafficLoop
from smartcity.events.common import ngsi_id
from smartcity.simulator.macroscopic import SEED, STEPS_PER_HOUR, LoopView, Roads
from smartcity.simulator.network import traffic_loops
from smartcity.simulator.sumo import DETECTOR_PERIOD_S
from streaming.indices import congestion_index
from streaming.traffic_windows import SEGMENT_COLUMNS, SENSOR_COLUMNS, SPEED_PERCENTILES

WINDOW = pd.Timedelta(minutes=5)
READINGS_PER_WINDOW = int(WINDOW.total_seconds()) // DETECTOR_PERIOD_S
COUNT_DISPERSION = 20.0  # gamma shape of the Poisson mean: variance = mean + mean^2 / 20
RIGHT_LANE_SHARE, LEFT_LANE_SPEEDUP = 0.85, 0.04
LANE_SPEED_NOISE, OCCUPANCY_NOISE = 0.03, 0.05
FREE_SPREAD, QUEUE_SPREAD = 0.08, 0.20  # log-normal sigma of the vehicles' speeds, added in a queue
PERCENTILE_Z = {name: float(z) for name, z in zip(SPEED_PERCENTILES, (0.0, 1.0364, 1.6449))}
_congestion = np.frompyfunc(congestion_index, 2, 1)


def loop_rows(roads: Roads, view: LoopView, windows: pd.DatetimeIndex, rng: np.random.Generator,
              noise: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(segment rows, sensor rows) of every window, in window order.

    ``noise=False``: what the loops would report without measurement noise (each lane's expected count, speed and
    occupancy): the city's exact state, which no forecast of the measured values can know better.
    """
    detectors = traffic_loops()
    index = roads.index()
    segment = np.array([index[d.edge] for d in detectors])
    lane = np.array([d.lane_index for d in detectors])
    share = _lane_factors(segment, lane)
    steps, count = len(windows), len(detectors)

    def normal(sigma: float | np.ndarray) -> np.ndarray:
        return rng.normal(0, 1, (steps, count)) * sigma if noise else np.zeros((steps, count))

    expected = view.flow[:, segment] * share / STEPS_PER_HOUR
    flow = rng.poisson(expected * rng.gamma(COUNT_DISPERSION, 1 / COUNT_DISPERSION, (steps, count))) if noise \
        else expected
    speedup = 1 + LEFT_LANE_SPEEDUP * (lane - _mean_by(segment, lane))
    speed = view.speed_kmh[:, segment] * speedup * np.exp(normal(LANE_SPEED_NOISE))
    speed = np.where(flow > 0, speed, np.nan)
    queued = view.queued[:, segment]
    occupancy = view.occupancy[:, segment] * share ** (1 - queued) * np.exp(normal(OCCUPANCY_NOISE))
    spread = FREE_SPREAD + QUEUE_SPREAD * queued
    median = speed * np.exp(-spread ** 2 / 2 + normal(1.0) * spread / np.sqrt(np.maximum(flow, 1)))
    percentiles = {name: np.where(flow > 1, median * np.exp(z * spread), speed) for name, z in PERCENTILE_Z.items()}
    sensors = {"flow": flow, "mean_speed_kmh": speed, **percentiles, "mean_occupancy": np.clip(occupancy, 0, 0.98)}
    return _segment_frame(roads, detectors, segment, sensors, windows), _sensor_frame(detectors, sensors, windows)


def _lane_factors(segment: np.ndarray, lane: np.ndarray) -> np.ndarray:
    """Each loop's flow against its segment's mean lane flow (mean 1 over a segment's lanes), fixed per lane."""
    weight = np.exp(np.random.default_rng(SEED).normal(0, 0.08, len(segment)))
    lanes = np.bincount(segment)[segment]
    weight = weight * np.where((lane == 0) & (lanes > 1), RIGHT_LANE_SHARE, 1.0)
    return weight * lanes / np.bincount(segment, weight)[segment]


def _mean_by(segment: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each loop's segment's mean of ``values`` over its loops."""
    return np.bincount(segment, values)[segment] / np.bincount(segment)[segment]


def _times(windows: pd.DatetimeIndex, repeat: int) -> dict[str, np.ndarray]:
    start = windows.repeat(repeat)
    return {"window_start": start, "window_end": start + WINDOW,
            "last_event_at": start + WINDOW - pd.Timedelta(seconds=DETECTOR_PERIOD_S)}


def _measures(flow: np.ndarray, speed: np.ndarray, occupancy: np.ndarray, percentiles: dict) -> dict:
    """The measure columns of flattened windows (speeds NaN where no vehicle passed)."""
    return {
        "flow": flow, "flow_per_hour": flow * float(STEPS_PER_HOUR), "mean_speed_kmh": np.round(speed, 2),
        **{name: np.round(values, 2) for name, values in percentiles.items()},
        "mean_occupancy": np.round(occupancy, 4),
        "congestion_index": np.round(_congestion(speed, occupancy).astype(float), 4),
    }


def _sensor_frame(detectors: list[TrafficLoop], sensors: dict, windows: pd.DatetimeIndex) -> pd.DataFrame:
    count = len(detectors)

    def each(key: str) -> np.ndarray:
        return np.tile(np.array([getattr(d, key) for d in detectors]), len(windows))

    columns = {
        "sensor_id": np.tile([ngsi_id("TrafficFlowObserved", d.id) for d in detectors], len(windows)),
        "segment_id": np.tile([ngsi_id("RoadSegment", d.edge) for d in detectors], len(windows)),
        "zone_id": each("zone"), "lane_id": each("lane_index"), "lon": each("lon"), "lat": each("lat"),
        "event_count": np.full(len(windows) * count, READINGS_PER_WINDOW),
        **_times(windows, count),
        **_measures(sensors["flow"].ravel(), sensors["mean_speed_kmh"].ravel(), sensors["mean_occupancy"].ravel(),
                    {name: sensors[name].ravel() for name in SPEED_PERCENTILES}),
    }
    return pd.DataFrame({name: columns[name] for name in SENSOR_COLUMNS if name != "updated_at"})


def _segment_frame(roads: Roads, detectors: list[TrafficLoop], segment: np.ndarray, sensors: dict,
                   windows: pd.DatetimeIndex) -> pd.DataFrame:
    """Each segment's window over its loops, as the streaming job aggregates them."""
    measured = np.unique(segment)
    members = (segment[:, None] == measured[None, :]).astype(float)  # (loops, segments)
    flow = sensors["flow"] @ members
    weighted = np.nan_to_num(sensors["flow"][..., None] * np.stack(
        [sensors[name] for name in ("mean_speed_kmh", *SPEED_PERCENTILES)], axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        speeds = np.einsum("tlk,ls->tsk", weighted, members) / flow[..., None]
    occupancy = sensors["mean_occupancy"] @ members / members.sum(axis=0)
    zones = [max(d.zone for d, s in zip(detectors, segment) if s == m) for m in measured]
    sensor_count = members.sum(axis=0).astype(int)
    columns = {
        "segment_id": np.tile([ngsi_id("RoadSegment", roads.edges[m]) for m in measured], len(windows)),
        "zone_id": np.tile(zones, len(windows)),
        "sensor_count": np.tile(sensor_count, len(windows)),
        "event_count": np.tile(sensor_count * READINGS_PER_WINDOW, len(windows)),
        **_times(windows, len(measured)),
        **_measures(flow.ravel().astype(int), speeds[..., 0].ravel(), occupancy.ravel(),
                    {name: speeds[..., i + 1].ravel() for i, name in enumerate(SPEED_PERCENTILES)}),
    }
    return pd.DataFrame({name: columns[name] for name in SEGMENT_COLUMNS if name != "updated_at"})
