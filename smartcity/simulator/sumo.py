"""The city's road traffic: a SUMO microscopic simulation of a real network, run in-process through libsumo.

The network and its measured peak-hour demand are RESCO's Cologne scenario (``cologne8``) shipped in the
``sumo-rl`` package; SUMO itself comes from the ``eclipse-sumo`` package. Demand follows a daily profile scaled so
that the rush hours carry :data:`DEMAND_SCALE` times RESCO's measured 7–8 h demand. Induction loops (E1
detectors, 5 s period) sit in the middle of chosen lanes. Incidents are real obstacles in the simulation: an
accident is a stopped vehicle on a lane, a lane closure forbids the lane to traffic; both cause queues upstream.

libsumo runs one simulation per process: open one :class:`TrafficSimulation` at a time.
"""

from __future__ import annotations

import random
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from smartcity.simulator.profiles import daily_profile, poisson
from smartcity.simulator.sumo_network import SCENARIO, libsumo, loop_lanes, scenario_dir

DETECTOR_PERIOD_S = 5
# A real loop is about 2 m long; a point detector can sit in the gap between two queued cars and see nothing.
LOOP_LENGTH_M = 2.0
# RESCO's measured 7-8 h trips (2,046) gave the loops ~70 veh/h per lane at the peak (main roads ~90, at most
# ~320) and 40 km/h: nothing congested. 2.5 times that (weekday 07:35-08:10, seed 3): ~160 veh/h per lane, main
# roads up to ~820, the busiest main-road lanes queue (down to ~14 km/h; vehicle-weighted mean 37 km/h). More
# adds little at the loops: RESCO's trips start on a few edges that cannot take more. Already at 2.5x they
# hold back up to ~1,000 trips at 09:30 (inserted by 12:45); at 3x 2,200 still wait at 11:00, into the evening.
DEMAND_SCALE = 2.5
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
    """Trip relations (origin edge, destination edge) of the scenario, and the daily rate of departures."""

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

    def __init__(self, seed: int, begin_s: int, detector_lanes: int | None = None, scenario: str = SCENARIO) -> None:
        self.seed = seed
        self.scenario = scenario_dir(scenario)
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
        lanes = loop_lanes(self.net_file)
        self._lanes = lanes if detector_lanes is None else lanes[:detector_lanes]
        self._start(begin_s)
        self.detectors = self._place_detectors()
        self._covered = [0.0] * len(self.detectors)
        self._sampled_steps = 0
        self.demand = self._load_demand()

    # --- lifecycle ---------------------------------------------------------------------------------------

    @property
    def net_file(self) -> Path:
        return self.scenario / f"{self.scenario.name}.net.xml"

    def _start(self, begin_s: int) -> None:
        additional = Path(self._workdir.name) / "city.add.xml"
        loops = "".join(
            f'  <inductionLoop id="loop.{lane}" lane="{lane}" pos="{length / 2:.2f}" length="{LOOP_LENGTH_M}" '
            f'period="{DETECTOR_PERIOD_S}" '
            f'file="NUL"/>\n' for lane, _, _, length, _ in self._lanes)
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
        """The loops of the chosen lanes, mid-lane, located once the network is loaded."""
        return [Detector(f"loop.{lane}", lane, edge, index, length / 2, *self.geo(edge, length / 2, index))
                for lane, edge, index, length, _ in self._lanes]

    def _load_demand(self) -> Demand:
        """RESCO's measured trips (7–8 h) as weighted relations, x :data:`DEMAND_SCALE` at the peak; routes found
        once, unroutable ones left out."""
        counts: dict[tuple[str, str], int] = {}
        for trip in ElementTree.parse(self.scenario / f"{self.scenario.name}.rou.xml").getroot().iter("trip"):
            pair = (trip.get("from"), trip.get("to"))
            counts[pair] = counts.get(pair, 0) + 1
        routes, weights = [], []
        for (origin, destination), count in sorted(counts.items()):
            edges = self.route(origin, destination)
            if edges:
                self.traci.route.add(f"od{len(routes)}", edges)
                routes.append(edges)
                weights.append(count)
        return Demand(routes, weights, peak_trips_per_hour=DEMAND_SCALE * sum(counts.values()))

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
