"""The city's road traffic: a SUMO microscopic simulation of a real network, run in-process through libsumo.

The network is the configured city's (``network`` in the city file): by default RESCO's Cologne scenario
(``cologne8``) shipped in the ``sumo-rl`` package; SUMO itself comes from the ``eclipse-sumo`` package. Demand
(:mod:`smartcity.simulator.sumo_demand`: RESCO's measured trips, or random trips on another network) follows a
daily profile. Induction loops (E1 detectors, 5 s period) sit where the city file's traffic loop sites are.
Incidents are real obstacles in the simulation: an accident is a stopped vehicle on a lane, a lane closure
forbids the lane to traffic; both cause queues upstream.

libsumo runs one simulation per process: open one :class:`TrafficSimulation` at a time.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from smartcity.city import CityDefinition
from smartcity.simulator.city import load_city
from smartcity.simulator.profiles import daily_profile, poisson
from smartcity.simulator.sumo_demand import trip_relations
from smartcity.simulator.sumo_network import libsumo, network_file, resco_routes

DETECTOR_PERIOD_S = 5
# A real loop is about 2 m long; a point detector can sit in the gap between two queued cars and see nothing.
LOOP_LENGTH_M = 2.0
VEHICLE_TYPES = """
  <vType id="pkw" vClass="passenger" speedDev="0.1" length="4.3" minGap="1.5"/>
  <vType id="taxi" vClass="passenger" speedDev="0.05" length="4.6" minGap="1.5" color="yellow"/>
  <vType id="wreck" vClass="passenger" length="4.5" minGap="0" color="red"/>
"""


@dataclass(frozen=True)
class Detector:
    """One induction loop: a lane of a road segment (SUMO edge), at ``position`` metres from the lane start."""

    id: str
    lane: str
    edge: str
    lane_index: int
    position: float
    lon: float
    lat: float


@dataclass(frozen=True)
class LoopReading:
    """What a loop saw over its last 5 s interval; ``speed_kmh`` is None when no vehicle passed."""

    vehicles: int
    occupancy: float
    speed_kmh: float | None


@dataclass
class Demand:
    """Trip relations (routes of origin edge to destination edge), and the daily rate of departures."""

    routes: list[list[str]]
    weights: list[int]
    peak_trips_per_hour: float

    def rate_per_s(self, seconds_of_day: float, weekday: bool = True) -> float:
        return self.peak_trips_per_hour / 3600 * daily_profile(seconds_of_day / 3600, weekday)


@dataclass
class _Obstacle:
    kind: str
    lane: str
    vehicle: str | None = None
    allowed_before: tuple[str, ...] = field(default_factory=tuple)


class TrafficSimulation:
    """The running SUMO simulation: steps city time, adds trips, reads loops, places and clears obstacles."""

    def __init__(self, seed: int, begin_s: int, detector_lanes: int | None = None,
                 city: CityDefinition | None = None) -> None:
        """``city`` (default: the configured one) gives the network and the loops (its first ``detector_lanes``)."""
        self.seed = seed
        self.city = city or load_city().extent
        net_file = network_file(self.city)
        if net_file is None or not net_file.is_file():
            raise FileNotFoundError(f"the city {self.city.name} has no SUMO network file ({self.city.network})")
        self.net_file = net_file
        self.traci = libsumo()
        self._rng = random.Random(f"{seed}:demand")
        self._workdir = tempfile.TemporaryDirectory(prefix="smartcity-sumo-")
        self._departures = 0
        self._obstacles: dict[str, _Obstacle] = {}
        # vehicles added by add_trip, until they arrive; then in ``arrived`` until their owner discards them
        self._watched: set[str] = set()
        self.arrived: set[str] = set()
        self.blocked_trips = 0
        begin_s -= begin_s % DETECTOR_PERIOD_S
        loops = self.city.sites.traffic_loops
        self._loops = loops if detector_lanes is None else loops[:detector_lanes]
        self._start(begin_s)
        self.detectors = self._place_detectors()
        self._covered = [0.0] * len(self.detectors)
        self._sampled_steps = 0
        try:
            self.demand = self._load_demand()
        except BaseException:  # libsumo runs one simulation per process: leave none behind
            self.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------------------------

    def _start(self, begin_s: int) -> None:
        additional = Path(self._workdir.name) / "city.add.xml"
        loops = "".join(
            f'  <inductionLoop id="{loop.id}" lane="{loop.lane}" pos="{loop.position:.2f}" length="{LOOP_LENGTH_M}" '
            f'period="{DETECTOR_PERIOD_S}" file="NUL"/>\n' for loop in self._loops)
        additional.write_text(f"<additional>\n{VEHICLE_TYPES}{loops}</additional>\n")
        self.traci.start([
            "sumo", "-n", str(self.net_file), "-a", str(additional), "--begin", str(begin_s),
            "--seed", str(self.seed), "--step-length", "1", "--no-step-log", "true", "--no-warnings", "true",
            "--time-to-teleport", "300", "--collision.action", "none", "--device.rerouting.probability", "0.3",
            "--device.rerouting.period", "60",
        ])

    def close(self) -> None:
        self.traci.close()
        self._workdir.cleanup()

    def __enter__(self) -> TrafficSimulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- network -----------------------------------------------------------------------------------------

    def _place_detectors(self) -> list[Detector]:
        """The city's loops, where its file places them."""
        return [Detector(loop.id, loop.lane, loop.edge, loop.lane_index, loop.position, loop.lon, loop.lat)
                for loop in self._loops]

    def _load_demand(self) -> Demand:
        """The network's trip relations (:func:`trip_relations`) with their weights; routes found once,
        unroutable ones left out."""
        relations = trip_relations(self.net_file, resco_routes(self.city))
        routes, weights = [], []
        for (origin, destination), count in sorted(relations.counts.items()):
            edges = self.route(origin, destination)
            if edges:
                self.traci.route.add(f"od{len(routes)}", edges)
                routes.append(edges)
                weights.append(count)
        if not routes:
            raise ValueError(f"{self.net_file}: no trip relation can be routed for passenger cars")
        return Demand(routes, weights, peak_trips_per_hour=relations.peak_trips_per_hour)

    def route(self, origin: str, destination: str) -> list[str]:
        """The fastest route between two edges now, or ``[]`` when there is none."""
        try:
            return list(self.traci.simulation.findRoute(origin, destination, vType="pkw").edges)
        except self.traci.TraCIException:
            return []

    def route_length(self, origin: str, destination: str) -> float:
        """Length in metres of the fastest route between two edges now (0 when there is none)."""
        try:
            return self.traci.simulation.findRoute(origin, destination, vType="taxi").length
        except self.traci.TraCIException:
            return 0.0

    def geo(self, edge: str, position: float, lane_index: int = 0) -> tuple[float, float]:
        return self.traci.simulation.convert2D(edge, position, lane_index, toGeo=True)

    # --- time ----------------------------------------------------------------------------------------------

    @property
    def time_s(self) -> float:
        return self.traci.simulation.getTime()

    def advance(self, seconds: int, weekday: bool = True) -> None:
        """Run ``seconds`` one-second steps, inserting the demand of each second."""
        for _ in range(seconds):
            rate = self.demand.rate_per_s(self.time_s % 86400, weekday)
            for _ in range(poisson(self._rng, rate)):
                index = self._rng.choices(range(len(self.demand.routes)), self.demand.weights)[0]
                self._departures += 1
                try:
                    self.traci.vehicle.add(f"car{self._departures}", f"od{index}", typeID="pkw",
                                           departLane="best", departSpeed="max")
                except self.traci.TraCIException:
                    self.blocked_trips += 1  # a closed lane cuts the route: this trip is not made
            self.traci.simulationStep()
            if self._watched:
                arrived = self._watched.intersection(self.traci.simulation.getArrivedIDList())
                self.arrived |= arrived
                self._watched -= arrived
            self._hold_wrecks()
            self._sample_occupancy()

    def _sample_occupancy(self) -> None:
        """Add this step's loop cover: SUMO's interval occupancy only counts vehicles that have left the loop,
        so a car standing on it would read 0 %; a real loop reports the share of time it was covered."""
        occupancy = self.traci.inductionloop.getLastStepOccupancy
        for index, detector in enumerate(self.detectors):
            self._covered[index] += occupancy(detector.id)
        self._sampled_steps += 1

    # --- readings ------------------------------------------------------------------------------------------

    def read_loops(self) -> dict[str, LoopReading]:
        """Each loop's last interval: vehicles that passed, share of time covered, mean speed of those passing."""
        loops = self.traci.inductionloop
        steps = max(1, self._sampled_steps)
        readings = {}
        for index, detector in enumerate(self.detectors):
            speed = loops.getLastIntervalMeanSpeed(detector.id)
            readings[detector.id] = LoopReading(
                loops.getLastIntervalVehicleNumber(detector.id),
                min(1.0, max(0.0, self._covered[index] / steps / 100)),
                round(speed * 3.6, 2) if speed >= 0 else None)
        self._covered = [0.0] * len(self.detectors)
        self._sampled_steps = 0
        return readings

    def edge_emissions(self, edges: list[str]) -> dict[str, float]:
        """Sum over ``edges`` of the vehicles' emissions this step: NOx, PMx and CO in mg/s (SUMO's HBEFA model)."""
        edge = self.traci.edge
        return {
            "nox": sum(edge.getNOxEmission(e) for e in edges),
            "pmx": sum(edge.getPMxEmission(e) for e in edges),
            "co": sum(edge.getCOEmission(e) for e in edges),
        }

    def vehicle_count(self) -> int:
        return self.traci.vehicle.getIDCount()

    # --- vehicles driven by other sources (taxis) ---------------------------------------------------------------

    def add_trip(self, vehicle: str, origin: str, destination: str, vehicle_type: str = "taxi") -> bool:
        """Send a vehicle from ``origin`` to ``destination``; False when no route joins them."""
        edges = self.route(origin, destination) if origin != destination else [origin]
        if not edges:
            return False
        try:
            self.traci.route.add(f"route.{vehicle}", edges)
            self.traci.vehicle.add(vehicle, f"route.{vehicle}", typeID=vehicle_type, departLane="best",
                                   departSpeed="max")
        except self.traci.TraCIException:  # a closed lane on the way
            return False
        self._watched.add(vehicle)
        return True

    def vehicle_fix(self, vehicle: str) -> tuple[float, float, float, float, float] | None:
        """(lon, lat, speed km/h, heading degrees, distance m) of a vehicle on the road; None if not (yet) there."""
        vehicles = self.traci.vehicle
        if vehicle not in vehicles.getIDList():
            return None
        x, y = vehicles.getPosition(vehicle)
        lon, lat = self.traci.simulation.convertGeo(x, y)
        return lon, lat, vehicles.getSpeed(vehicle) * 3.6, vehicles.getAngle(vehicle) % 360, vehicles.getDistance(vehicle)

    # --- incidents -----------------------------------------------------------------------------------------

    def crash(self, incident: str, lane: str, position: float) -> None:
        """An accident: a wrecked car stands on ``lane`` at ``position`` metres until :meth:`clear`."""
        edge, index = lane.rsplit("_", 1)
        wreck = f"wreck.{incident}"
        self.traci.route.add(f"route.{wreck}", [edge])
        self.traci.vehicle.add(wreck, f"route.{wreck}", typeID="wreck", departLane=index,
                               departPos=f"{position:.1f}", departSpeed="0")
        self._obstacles[incident] = _Obstacle("crash", lane, vehicle=wreck)

    def close_lane(self, incident: str, lane: str) -> None:
        """A lane closure: no vehicle may enter ``lane`` until :meth:`clear`."""
        allowed = tuple(self.traci.lane.getAllowed(lane))
        self.traci.lane.setAllowed(lane, ["authority"])
        self._obstacles[incident] = _Obstacle("closure", lane, allowed_before=allowed)

    def clear(self, incident: str) -> None:
        obstacle = self._obstacles.pop(incident, None)
        if obstacle is None:
            return
        if obstacle.kind == "closure":
            self.traci.lane.setAllowed(obstacle.lane, list(obstacle.allowed_before))
        elif obstacle.vehicle in self.traci.vehicle.getIDList():
            self.traci.vehicle.remove(obstacle.vehicle)

    def _hold_wrecks(self) -> None:
        """A wreck that has just appeared stops where it stands (a stop, so SUMO never teleports it away)."""
        for obstacle in self._obstacles.values():
            if obstacle.kind == "crash" and obstacle.vehicle in self.traci.simulation.getDepartedIDList():
                vehicles = self.traci.vehicle
                vehicles.setLaneChangeMode(obstacle.vehicle, 0)
                edge, index = obstacle.lane.rsplit("_", 1)
                stop_at = min(vehicles.getLanePosition(obstacle.vehicle) + 0.5,
                              self.traci.lane.getLength(obstacle.lane) - 0.1)
                vehicles.setStop(obstacle.vehicle, edge, pos=stop_at, laneIndex=int(index), duration=10**7)
