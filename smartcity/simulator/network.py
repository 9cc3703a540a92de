"""The road network's topology and its traffic loops, as the configured city file holds them.

``smartcity city build --from-sumo`` (:mod:`smartcity.simulator.build_city`) reads them from a SUMO network once:

- each road segment (a SUMO edge open to cars) with the segments a vehicle can come from (``upstream``) and go
  to (``downstream``), from the network's connections (:func:`topology`). U-turns are left out: they join the two
  directions of one street, whose traffic is not one flow;
- the induction loops the live simulation places (``sites.traffic_loops``): one in the middle of every car lane
  of at least 30 m, with the place it reports and its zone.

History generation and forecasting features read them from the city (:func:`traffic_loops`, :func:`neighbours`),
so they need neither SUMO nor the XML at run time.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from smartcity.city.model import TrafficLoop
from smartcity.events.common import ngsi_id
from smartcity.simulator.city import load_city
from smartcity.simulator.sumo_network import allows_cars


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


def traffic_loops() -> list[TrafficLoop]:
    """The configured city's traffic loops, in the live simulation's order (main roads first)."""
    return list(load_city().extent.sites.traffic_loops)


def segment_ngsi_id(edge: str) -> str:
    return ngsi_id("RoadSegment", edge)


def neighbours() -> dict[str, dict[str, list[str]]]:
    """Segment NGSI id -> ``{"upstream": [...], "downstream": [...]}`` NGSI ids of the segments joined to it.

    Ids are the ones the traffic events and aggregates carry (``urn:ngsi-ld:RoadSegment:<edge>``); every road
    segment of the configured city is a key, with empty lists where it has no neighbour on that side.
    """
    return {
        segment_ngsi_id(segment.id): {side: [segment_ngsi_id(other) for other in getattr(segment, side)]
                                      for side in ("upstream", "downstream")}
        for segment in load_city().segments.values()
    }
