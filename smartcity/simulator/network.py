"""The road network's topology and its traffic detectors: ``python -m smartcity.simulator.network``.

Read from the SUMO network of the scenario (``<scenario>.net.xml``) and kept in ``data/network.json``
(committed), so that history generation and forecasting features need neither SUMO nor the XML at run time:

- each road segment (a SUMO edge open to cars, as in the city file) with its car lanes and the segments a
  vehicle can come from (``upstream``) and go to (``downstream``), from the network's connections. U-turns are
  left out: they join the two directions of one street, whose traffic is not one flow;
- the induction loops the live simulation places (:class:`smartcity.simulator.sumo.TrafficSimulation`): one in
  the middle of every car lane of at least 30 m, with the place it reports and its zone.

The output is deterministic: running the module again gives the same file.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from functools import lru_cache
from pathlib import Path

from smartcity.events.common import ngsi_id
from smartcity.simulator.city import DATA_DIR, load_city
from smartcity.simulator.sumo_network import SCENARIO, allows_cars, loop_lanes, network, scenario_dir

NETWORK_FILE = DATA_DIR / "network.json"


def main() -> None:
    NETWORK_FILE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {NETWORK_FILE}")


def build() -> dict:
    """The topology of the scenario's network and its detectors (starts SUMO once, for the detectors' places)."""
    net_file = scenario_dir(SCENARIO) / f"{SCENARIO}.net.xml"
    return {"network": f"sumo_rl/nets/RESCO/{SCENARIO}/{SCENARIO}.net.xml",
            "segments": topology(net_file), "detectors": _detectors(net_file)}


def topology(net_file: Path) -> dict[str, dict]:
    """Edge id -> car lanes, upstream and downstream edge ids (sorted), for every edge open to cars."""
    root = ElementTree.parse(net_file).getroot()
    car_lanes: dict[str, set[int]] = {}
    for edge in root.iter("edge"):
        if not edge.get("function"):
            lanes = {int(lane.get("index")) for lane in edge.iter("lane") if allows_cars(lane)}
            if lanes:
                car_lanes[edge.get("id")] = lanes
    segments = {edge: {"lanes": len(lanes), "upstream": set(), "downstream": set()}
                for edge, lanes in sorted(car_lanes.items())}
    for link in root.iter("connection"):
        origin, target = link.get("from"), link.get("to")
        if (origin in car_lanes and target in car_lanes and origin != target and link.get("dir") != "t"
                and int(link.get("fromLane")) in car_lanes[origin] and int(link.get("toLane")) in car_lanes[target]):
            segments[origin]["downstream"].add(target)
            segments[target]["upstream"].add(origin)
    return {edge: {**item, "upstream": sorted(item["upstream"]), "downstream": sorted(item["downstream"])}
            for edge, item in segments.items()}


def _detectors(net_file: Path) -> list[dict]:
    """The live simulation's loops, in its order (main roads first), placed with SUMO's own geo conversion."""
    extent = load_city().extent
    detectors = []
    with network(net_file) as traci:
        for lane, edge, index, length, _ in loop_lanes(net_file):
            lon, lat = traci.simulation.convert2D(edge, length / 2, index, toGeo=True)
            detectors.append({"id": f"loop.{lane}", "lane": lane, "edge": edge, "lane_index": index,
                              "lon": round(lon, 7), "lat": round(lat, 7), "zone": extent.zone_of(lon, lat)})
    return detectors


@lru_cache(maxsize=1)
def network_data() -> dict:
    """The contents of ``data/network.json`` (read once)."""
    return json.loads(NETWORK_FILE.read_text())


def segment_ngsi_id(edge: str) -> str:
    return ngsi_id("RoadSegment", edge)


def neighbours() -> dict[str, dict[str, list[str]]]:
    """Segment NGSI id -> ``{"upstream": [...], "downstream": [...]}`` NGSI ids of the segments joined to it.

    Ids are the ones the traffic events and aggregates carry (``urn:ngsi-ld:RoadSegment:<edge>``); every road
    segment open to cars is a key, with empty lists where it has no neighbour on that side.
    """
    return {
        segment_ngsi_id(edge): {side: [segment_ngsi_id(other) for other in item[side]]
                                for side in ("upstream", "downstream")}
        for edge, item in network_data()["segments"].items()
    }


if __name__ == "__main__":
    main()
