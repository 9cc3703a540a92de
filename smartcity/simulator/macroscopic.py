"""A macroscopic traffic model of the city's road network in 5-minute steps, vectorised over the road segments.

Each segment is a queue with a storage (its lanes x length at jam density) in front of a stop line that
discharges at most its capacity: lanes x saturation flow x the share of time its junction lets it go, cut by
rain and incidents. Demand above capacity builds the queue. A queue longer than the segment spills back: the
vehicles that do not fit wait on the upstream segments, and a segment whose downstream segments are nearly full
can only discharge part of its capacity; both act one step later, so congestion travels upstream along the
network step by step. Downstream of a bottleneck the arrivals fall (the upstream segments let fewer vehicles
through), and a draining queue sends a wave of vehicles on.

What a loop in the middle of a lane sees follows a triangular fundamental diagram (free-flow speed from the
speed limit, saturation flow, jam density): the free branch while the queue stays short of the loop, the
congested branch (low speed, high occupancy at the flow the queue discharges) once it reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from smartcity.extras import require

require("simulator", "numpy")
import numpy as np  # noqa: E402 - after the check that names the extra to install

from smartcity.city import configured_city_file
from smartcity.simulator.city import load_city

STEPS_PER_HOUR = 12
SATURATION_PER_LANE = 1900.0  # veh/h: a lane's mid-block capacity (HCM's base saturation flow)
JAM_DENSITY = 140.0  # veh/km/lane: 7 m per stopped car (4.3 m long, gaps)
OCCUPIED_LENGTH_M = 4.3 + 2.0  # a loop is covered while a car (4.3 m) passes over its 2 m
# SUMO's drivers keep 40-43 km/h on 50 km/h roads: the free-flow speed is this share of the speed limit.
FREE_FLOW_SHARE = 0.85
# Share of the upstream arrivals that come through the upstream segments (the rest starts or joins on the way).
UPSTREAM_SHARE = 0.6
# Queue share of the segment (0..1) at which the queue starts to reach the loop, and when it covers it all.
QUEUE_AT_LOOP = (0.3, 0.8)
SEED = 2026  # the city's own draws (junction green shares, loads): one city whatever the history's seed

# (lowest priority, green share of the stop line, demand/capacity at the weekday peak): ranges of the draws
ROAD_CLASSES = (
    (9, (0.75, 0.95), (0.75, 1.12)),  # primary roads (the arterials)
    (7, (0.65, 0.90), (0.60, 1.00)),  # secondary roads
    (5, (0.55, 0.80), (0.35, 0.80)),  # tertiary and unclassified roads
    (0, (0.45, 0.70), (0.10, 0.35)),  # residential and living streets
)


@dataclass(frozen=True)
class Roads:
    """The road segments as arrays in one order (``edges``), with their joins as weight matrices.

    ``upstream[i, j]`` is the share of segment i's upstream traffic that comes from segment j (rows sum to 1, or
    0 where i has no upstream segment); ``downstream[i, j]`` the share of i's traffic that goes on to j.
    """

    edges: tuple[str, ...]
    lanes: np.ndarray
    length_m: np.ndarray
    priority: np.ndarray
    free_speed_kmh: np.ndarray
    green_share: np.ndarray
    peak_demand: np.ndarray  # veh/h at a weekday's peak hour, before noise
    upstream: np.ndarray
    downstream: np.ndarray

    @property
    def saturation(self) -> np.ndarray:
        """A lane's mid-block capacity (veh/h): lower on slow streets, where the critical density is at most a
        third of the jam density."""
        return np.minimum(SATURATION_PER_LANE, self.free_speed_kmh * JAM_DENSITY / 3)

    @property
    def capacity(self) -> np.ndarray:
        """Stop-line discharge capacity (veh/h) in the dry, with no incident."""
        return self.lanes * self.saturation * self.green_share

    @property
    def storage(self) -> np.ndarray:
        """Vehicles the segment holds standing."""
        return self.lanes * self.length_m * JAM_DENSITY / 1000

    def index(self) -> dict[str, int]:
        return {edge: i for i, edge in enumerate(self.edges)}


def city_roads() -> Roads:
    """The configured city's road segments and their joins (its file's ``segments``)."""
    return _roads_of(configured_city_file())


@lru_cache(maxsize=4)
def _roads_of(city_file: Path) -> Roads:
    segments = load_city().segments
    topology = {e: {"upstream": s.upstream, "downstream": s.downstream} for e, s in segments.items()}
    edges = tuple(sorted(segments))
    rng = np.random.default_rng(SEED)
    lanes = np.array([segments[e].lanes for e in edges], float)
    priority = np.array([segments[e].priority for e in edges])
    # a network without priorities (SUMO's default -1) counts as residential streets
    classes = [next((c for c in ROAD_CLASSES if p >= c[0]), ROAD_CLASSES[-1]) for p in priority]
    green = np.array([rng.uniform(*c[1]) for c in classes])
    load = np.array([rng.uniform(*c[2]) for c in classes])
    index = {edge: i for i, edge in enumerate(edges)}
    roads = Roads(
        edges=edges, lanes=lanes, priority=priority,
        length_m=np.array([segments[e].length for e in edges]),
        free_speed_kmh=np.array([segments[e].speed * 3.6 * FREE_FLOW_SHARE for e in edges]),
        green_share=green, peak_demand=np.zeros(len(edges)), upstream=np.zeros(0), downstream=np.zeros(0),
    )
    peak_demand = load * roads.capacity
    return replace(roads, peak_demand=peak_demand,
                   upstream=_shares(edges, index, topology, "upstream", peak_demand),
                   downstream=_shares(edges, index, topology, "downstream", peak_demand))


def _shares(edges, index, topology, side: str, weight: np.ndarray) -> np.ndarray:
    """Row i: the segments on ``side`` of segment i, weighted by their demand (rows sum to 1 or are 0)."""
    matrix = np.zeros((len(edges), len(edges)))
    for i, edge in enumerate(edges):
        for other in topology[edge][side]:
            matrix[i, index[other]] = weight[index[other]]
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


@dataclass(frozen=True)
class Flows:
    """The model's run, arrays of (steps, segments): vehicles/h through the stop line and the queue share 0..1."""

    served: np.ndarray
    queue_share: np.ndarray


def run(roads: Roads, demand: np.ndarray, capacity: np.ndarray) -> Flows:
    """Step the queues through ``demand`` (veh/h wanting through each segment) against ``capacity`` (veh/h)."""
    steps, count = demand.shape
    storage = roads.storage
    has_upstream, has_downstream = roads.upstream.sum(axis=1) > 0, roads.downstream.sum(axis=1) > 0
    queue, waiting = np.zeros(count), np.zeros(count)
    out, arrivals, before = demand[0].copy(), demand[0].copy(), demand[0].copy()
    served, queue_share = np.empty((steps, count)), np.empty((steps, count))
    for t in range(steps):
        # what the downstream segments took of what came to them last step: room left plus what they let go
        taken = np.clip(((storage - queue) * STEPS_PER_HOUR + out) / np.maximum(arrivals, 1e-6), 0, 1)
        supply = capacity[t] * np.where(has_downstream, roads.downstream @ taken, 1.0)
        let_through = (roads.upstream @ out) / np.maximum(roads.upstream @ before, 1e-6)
        feed = np.where(has_upstream, np.clip(let_through, 0.2, 3.0), 1.0)
        arrivals = demand[t] * (1 - UPSTREAM_SHARE + UPSTREAM_SHARE * feed)
        queue += waiting
        out = np.minimum(queue * STEPS_PER_HOUR + arrivals, supply)
        queue = np.maximum(queue + (arrivals - out) / STEPS_PER_HOUR, 0)  # >= 0 also in rounding
        # the vehicles that do not fit stand on the upstream segments; at the city's edge, outside it
        overflow = np.where(has_upstream, np.maximum(queue - storage, 0), 0)
        queue -= overflow
        waiting = roads.upstream.T @ overflow
        served[t], queue_share[t], before = out, np.minimum(queue / storage, 1), demand[t]
    return Flows(served, queue_share)


@dataclass(frozen=True)
class LoopView:
    """What a loop in mid-segment sees, per lane: flow (veh/h), space-mean speed (km/h), occupancy 0..1."""

    flow: np.ndarray
    speed_kmh: np.ndarray
    occupancy: np.ndarray
    queued: np.ndarray  # 0..1: how much of the window the loop stood in the queue


def loop_view(roads: Roads, flows: Flows, saturation_factor: np.ndarray, speed_factor: np.ndarray) -> LoopView:
    """The triangular fundamental diagram at the loops; ``*_factor`` (steps, 1 or segments) scale the dry road."""
    flow = flows.served / roads.lanes
    saturation = roads.saturation * saturation_factor
    free_speed = roads.free_speed_kmh * speed_factor
    # platoons from the signals slow the free branch a little as the flow nears saturation
    free_branch = free_speed * (1 - 0.15 * np.minimum(flow / saturation, 1) ** 2)
    wave_speed = saturation / (JAM_DENSITY - saturation / free_speed)
    free_density = flow / free_branch
    queued_density = np.maximum(JAM_DENSITY - flow / wave_speed, free_density)
    low, high = QUEUE_AT_LOOP
    queued = np.clip((flows.queue_share - low) / (high - low), 0, 1)
    density = (1 - queued) * free_density + queued * queued_density
    speed = np.where(flow > 0, flow / np.maximum(density, 1e-9), free_branch)
    occupancy = np.clip(density * OCCUPIED_LENGTH_M / 1000, 0, 0.98)
    return LoopView(flow, speed, occupancy, queued)
