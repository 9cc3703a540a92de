"""SUMO's network files and libsumo, without a running simulation: where the RESCO scenario lies, libsumo loaded
with ``SUMO_HOME`` set, a network opened for its geometry and routes, and the lanes where induction loops can sit.
The live simulation is :mod:`smartcity.simulator.sumo`; the city's reference data is built from these
(:mod:`smartcity.simulator.build_city`, :mod:`smartcity.simulator.network`).
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Iterator

from smartcity.city import CityDefinition
from smartcity.extras import MissingExtra

SCENARIO = "cologne8"
RESCO_PREFIX = "sumo_rl/nets/RESCO/"  # how a city file names a RESCO scenario's network, wherever sumo-rl lies


def scenario_dir(name: str = SCENARIO) -> Path:
    """The RESCO scenario folder inside the installed ``sumo-rl`` package (found without importing it)."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or spec.origin is None:
        raise MissingExtra("simulator", ["sumo_rl"])
    return Path(spec.origin).parent / "nets" / "RESCO" / name


def resco_network(name: str = SCENARIO) -> str:
    """The name a city file gives a RESCO scenario's network (``sumo_rl/nets/RESCO/<name>/<name>.net.xml``)."""
    return f"{RESCO_PREFIX}{name}/{name}.net.xml"


def network_file(city: CityDefinition) -> Path | None:
    """The city's SUMO network file: a RESCO scenario's inside the installed sumo-rl, else the city file's own
    (resolved against its folder); None for a city without one."""
    if city.network and city.network.startswith(RESCO_PREFIX):
        name = city.network.removeprefix(RESCO_PREFIX).split("/")[0]
        return scenario_dir(name) / Path(city.network).name
    return city.network_file


def resco_routes(city: CityDefinition) -> Path | None:
    """The measured trips of a RESCO scenario's network (``<name>.rou.xml`` beside it); None for other networks."""
    if not (city.network and city.network.startswith(RESCO_PREFIX)):
        return None
    net_file = network_file(city)
    return net_file.with_name(net_file.name.replace(".net.xml", ".rou.xml"))


@lru_cache(maxsize=1)
def libsumo() -> ModuleType:
    """The libsumo module, with ``SUMO_HOME`` pointing at the ``eclipse-sumo`` package's SUMO."""
    try:
        import sumo
    except ImportError:
        raise MissingExtra("simulator", ["sumo"]) from None
    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)
    # libsumo otherwise prints a pyarrow version warning on import; we never use SUMO's parquet output
    os.environ.setdefault("LIBSUMO_AS_TRACI", "quiet")
    try:
        import libsumo as module
    except ImportError:
        raise MissingExtra("simulator", ["libsumo"]) from None
    return module


@contextmanager
def network(net_file: Path) -> Iterator[ModuleType]:
    """libsumo with only ``net_file`` loaded (no traffic): to read geometry and find routes."""
    traci = libsumo()
    traci.start(["sumo", "-n", str(net_file), "--no-step-log", "true", "--no-warnings", "true"])
    try:
        yield traci
    finally:
        traci.close()


def allows_cars(lane: ElementTree.Element) -> bool:
    """Whether a network file's ``<lane>`` lets passenger cars in."""
    allow, disallow = lane.get("allow", ""), lane.get("disallow", "")
    return "passenger" not in disallow.split() and (not allow or "passenger" in allow.split())


@lru_cache(maxsize=4)
def loop_lanes(net_file: Path) -> list[tuple[str, str, int, float, float]]:
    """(lane, edge, index, length, speed) of the normal lanes of at least 30 m open to cars, main roads first."""
    lanes = []
    for edge in ElementTree.parse(net_file).getroot().iter("edge"):
        if edge.get("function"):
            continue
        for lane in edge.iter("lane"):
            length, speed = float(lane.get("length")), float(lane.get("speed"))
            if length < 30 or not allows_cars(lane):
                continue
            lanes.append((lane.get("id"), edge.get("id"), int(lane.get("index")), length, speed))
    return sorted(lanes, key=lambda item: (-item[4], item[0]))
