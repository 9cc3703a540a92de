"""traffic-sensors: the induction loops of the SUMO simulation, one event per sensor every 5 s of city time.

Scale-out: asked for more sensors than the network has lanes, the source replicates the network's sensors.
Replica ``r<k>`` of a sensor reports what the real sensor saw ``k mod 11 + 1`` intervals earlier (a time-shifted
copy, so replicas do not all move in lockstep), under its own ids (``r<k>.<sensor>``, road segment
``r<k>.<edge>``) at the real sensor's place. That reaches large sensor counts without simulating N networks.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from smartcity.events import TrafficFlowObserved
from smartcity.events.common import Location, ngsi_id
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.state import ZoneTraffic
from smartcity.simulator.sumo import DETECTOR_PERIOD_S, LoopReading

REPLICA_LAGS = 11
CONGESTED_OCCUPANCY = 0.35
CONGESTED_SPEED_KMH = 20.0


@dataclass(frozen=True)
class Sensor:
    """One sensor as published: its ids, place and the loop (and lag) whose readings it reports."""

    id: str
    segment: str
    lane_index: int
    location: Location
    zone: str
    loop: str
    lag: int = 0


class TrafficSource(Source):
    topic = "traffic-sensors"
    every_s = DETECTOR_PERIOD_S

    def __init__(self, context: SourceContext, sensors: int | None = None) -> None:
        super().__init__(context)
        if context.traffic is None:
            raise ValueError("the traffic source needs the SUMO simulation")
        self.traffic = context.traffic
        real = [self._sensor(d.id, d.edge, d.lane_index, d.lon, d.lat) for d in self.traffic.detectors]
        wanted = len(real) if sensors is None else sensors
        self.sensors = real[:wanted] + self._replicas(wanted - len(real))
        self._history: deque[dict[str, LoopReading]] = deque(maxlen=REPLICA_LAGS + 1)

    def _sensor(self, loop: str, edge: str, lane_index: int, lon: float, lat: float,
                replica: int = 0) -> Sensor:
        prefix = f"r{replica}." if replica else ""
        return Sensor(ngsi_id("TrafficFlowObserved", prefix + loop), ngsi_id("RoadSegment", prefix + edge),
                      lane_index, Location.at(lon, lat), self.city.extent.zone_of(lon, lat), loop,
                      replica % REPLICA_LAGS + 1 if replica else 0)

    def _replicas(self, count: int) -> list[Sensor]:
        """``count`` replicas (none when ``count`` <= 0): every detector once per replica number, in order."""
        detectors = self.traffic.detectors
        return [self._sensor(d.id, d.edge, d.lane_index, d.lon, d.lat, replica=n // len(detectors) + 1)
                for n, d in zip(range(max(0, count)), itertools.cycle(detectors))]

    def observe(self, now: datetime) -> list[TrafficFlowObserved]:
        self._history.append(self.traffic.read_loops())
        start = now - timedelta(seconds=DETECTOR_PERIOD_S)
        events = []
        for sensor in self.sensors:
            readings = self._history[-1 - min(sensor.lag, len(self._history) - 1)]
            events.append(self._event(sensor, readings[sensor.loop], start, now))
        self._update_zones(self._history[-1])
        return events

    def _event(self, sensor: Sensor, reading: LoopReading, start: datetime, end: datetime) -> TrafficFlowObserved:
        speed = reading.speed_kmh
        return TrafficFlowObserved(
            id=sensor.id, dateObserved=end, dateObservedFrom=start, dateObservedTo=end, location=sensor.location,
            refRoadSegment=sensor.segment, laneId=sensor.lane_index, zone=sensor.zone, intensity=reading.vehicles,
            intensityPerHour=reading.vehicles * 3600 / DETECTOR_PERIOD_S, occupancy=round(reading.occupancy, 4),
            averageVehicleSpeed=speed,
            congested=reading.occupancy >= CONGESTED_OCCUPANCY and (speed is None or speed < CONGESTED_SPEED_KMH))

    def _update_zones(self, readings: dict[str, LoopReading]) -> None:
        by_zone: dict[str, list[LoopReading]] = {}
        for sensor in self.sensors:
            if not sensor.lag:
                by_zone.setdefault(sensor.zone, []).append(readings[sensor.loop])
        for zone, zone_readings in by_zone.items():
            speeds = [r.speed_kmh for r in zone_readings if r.speed_kmh is not None]
            self.state.traffic[zone] = ZoneTraffic(
                occupancy=sum(r.occupancy for r in zone_readings) / len(zone_readings),
                speed_kmh=sum(speeds) / len(speeds) if speeds else None,
                vehicles_per_hour=sum(r.vehicles for r in zone_readings) * 3600 / DETECTOR_PERIOD_S)

