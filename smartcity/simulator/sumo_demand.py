"""The live simulation's travel demand on a city's SUMO network: trip relations (origin edge, destination edge)
with weights, and the peak hour's trips.

A RESCO scenario (such as the bundled ``cologne8``) brings its measured 7-8 h trips (``<name>.rou.xml``). Any other
network gets random trips from SUMO's own ``randomTrips.py`` (the ``eclipse-sumo`` package's tools), made once
into ``sumo-demand/`` beside the network file and keyed by the network file's hash (a changed network gets new
trips), and a peak hour as busy per kilometre of car lane as RESCO's Cologne at :data:`DEMAND_SCALE`. The
simulation spreads the peak over the day with the time-of-day profile (:mod:`smartcity.simulator.profiles`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from smartcity.simulator.sumo_network import allows_cars, libsumo

# RESCO's measured 7-8 h trips (2,046) gave the loops ~70 veh/h per lane at the peak (main roads ~90, at most
# ~320) and 40 km/h: nothing congested. 2.5 times that (weekday 07:35-08:10, seed 3): ~160 veh/h per lane, main
# roads up to ~820, the busiest main-road lanes queue (down to ~14 km/h; vehicle-weighted mean 37 km/h). More
# adds little at the loops: RESCO's trips start on a few edges that cannot take more. Already at 2.5x they
# hold back up to ~1,000 trips at 09:30 (inserted by 12:45); at 3x 2,200 still wait at 11:00, into the evening.
DEMAND_SCALE = 2.5
# cologne8 at DEMAND_SCALE: 2.5 x 2,046 trips/h on 15.9 km of car lanes
PEAK_TRIPS_PER_LANE_KM = 320.0
RANDOM_RELATIONS = 1000  # trips randomTrips draws: the relations and their weights, not the rate
RANDOM_TRIPS_SEED = 42
CACHE_FOLDER = "sumo-demand"


@dataclass(frozen=True)
class TripRelations:
    """How often each (origin edge, destination edge) occurs, and the peak hour's trips."""

    counts: dict[tuple[str, str], int]
    peak_trips_per_hour: float


def trip_relations(net_file: Path, resco_routes: Path | None) -> TripRelations:
    """RESCO's measured trips when the network is a RESCO scenario's, else random trips on the network."""
    if resco_routes is not None:
        counts = _counts(resco_routes)
        return TripRelations(counts, DEMAND_SCALE * sum(counts.values()))
    return TripRelations(_counts(random_trips(net_file)), PEAK_TRIPS_PER_LANE_KM * car_lane_km(net_file))


def _counts(trips_file: Path) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for trip in ElementTree.parse(trips_file).getroot().iter("trip"):
        pair = (trip.get("from"), trip.get("to"))
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def car_lane_km(net_file: Path) -> float:
    """Kilometres of the network's normal lanes open to cars."""
    return sum(float(lane.get("length")) for edge in ElementTree.parse(net_file).getroot().iter("edge")
               if not edge.get("function") for lane in edge.iter("lane") if allows_cars(lane)) / 1000


def random_trips(net_file: Path) -> Path:
    """The network's random trips file, made by ``randomTrips.py`` the first time (then read from the cache)."""
    digest = hashlib.sha256(net_file.read_bytes()).hexdigest()[:16]
    cached = net_file.parent / CACHE_FOLDER / f"{digest}-{RANDOM_RELATIONS}-{RANDOM_TRIPS_SEED}.trips.xml"
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.part").resolve()
    libsumo()  # sets SUMO_HOME
    tools = Path(os.environ["SUMO_HOME"]) / "tools"
    command = [sys.executable, str(tools / "randomTrips.py"), "-n", str(net_file.resolve()), "-o", str(partial),
               "--seed", str(RANDOM_TRIPS_SEED), "-b", "0", "-e", str(RANDOM_RELATIONS), "-p", "1",
               "--vclass", "passenger", "--min-distance", "100"]
    with tempfile.TemporaryDirectory(prefix="smartcity-trips-") as scratch:  # it leaves a routes file in its cwd
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=scratch)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"{net_file}: randomTrips.py failed: {(done.stderr or done.stdout).strip()[-500:]}")
    partial.replace(cached)  # whole or not at all: another process may be making the same file
    return cached
