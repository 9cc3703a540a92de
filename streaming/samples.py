"""Valid stream events built from the few values a streaming test or benchmark cares about.

Every builder returns the stream's pydantic model (so a sample is exactly as strict as a real event);
:func:`publish_events` sends them as binary-mode CloudEvents, the way producers do (the platform's one recipe,
:mod:`smartcity.runtime.readings`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from smartcity.backends.bus import EventBus
from smartcity.city.geometry import bbox
from smartcity.events import (
    AirQualityObserved, BikeHireDockingStation, CityEvent, Location, OffStreetParking, PublicTransportVehicle,
    STREAMS, TaxiTrip, TrafficFlowObserved, city,
)
from smartcity.runtime.readings import publish_event, reading_event

SAMPLE_SOURCE = "/smartcity/streaming/samples"
TRAFFIC_INTERVAL = timedelta(seconds=5)


def zone_centre(zone: str) -> Location:
    """The middle of ``zone``'s box, so that an event's location and zone agree."""
    west, south, east, north = bbox(city().zone(zone).polygon)
    return Location.at((west + east) / 2, (south + north) / 2)


def traffic(sensor: str, at: datetime, *, intensity: int, speed: float | None, occupancy: float,
            segment: str = "seg-1", zone: str = "Z11", lane: int = 0) -> TrafficFlowObserved:
    """One sensor's 5-second count ending at ``at``."""
    return TrafficFlowObserved(
        id=TrafficFlowObserved.make_id(sensor), dateObserved=at, dateObservedFrom=at - TRAFFIC_INTERVAL,
        dateObservedTo=at, location=zone_centre(zone), refRoadSegment=f"urn:ngsi-ld:RoadSegment:{segment}",
        laneId=lane, zone=zone, intensity=intensity,
        intensityPerHour=intensity * 3600 / TRAFFIC_INTERVAL.total_seconds(), occupancy=occupancy,
        averageVehicleSpeed=speed,
        congested=occupancy > 0.5 and (speed or 0) < 20,
    )


def bus_position(vehicle: str, at: datetime, *, delay_s: int, zone: str = "Z11") -> PublicTransportVehicle:
    return PublicTransportVehicle(
        id=PublicTransportVehicle.make_id(vehicle), dateObserved=at, vehicleId=vehicle, vehicleType="bus",
        routeId="r1", tripId="t1", stopId="s1", stopSequence=1, currentStatus="IN_TRANSIT_TO", delay=delay_s,
        location=zone_centre(zone), zone=zone, speed=20.0, heading=90.0, occupancyStatus="MANY_SEATS_AVAILABLE",
    )


def bike_station(station: str, at: datetime, *, bikes: int, docks: int, zone: str = "Z11") -> BikeHireDockingStation:
    return BikeHireDockingStation(
        id=BikeHireDockingStation.make_id(station), dateObserved=at, name=station, location=zone_centre(zone),
        zone=zone, totalSlotNumber=docks, availableBikeNumber=bikes, freeSlotNumber=docks - bikes,
        outOfServiceSlotNumber=0, isInstalled=True, isRenting=True, isReturning=True,
        status="empty" if bikes == 0 else "working", dateLastReported=at,
    )


def car_park(park: str, at: datetime, *, occupied: int, total: int, zone: str = "Z11") -> OffStreetParking:
    return OffStreetParking(
        id=OffStreetParking.make_id(park), dateObserved=at, name=park, location=zone_centre(zone), zone=zone,
        refRoadSegment="urn:ngsi-ld:RoadSegment:seg-1", totalSpotNumber=total, occupiedSpotNumber=occupied,
        availableSpotNumber=total - occupied, occupancy=occupied / total,
        status="full" if occupied == total else "open",
    )


def taxi_fix(trip: str, at: datetime, *, status: str = "toPickup", zone: str = "Z11") -> TaxiTrip:
    return TaxiTrip(
        id=TaxiTrip.make_id(trip), dateObserved=at, serviceType="taxi", vehicleId="v-pseudonym",
        driverId="d-pseudonym", tripStatus=status, location=zone_centre(zone), zone=zone, speed=30.0, heading=0.0,
        pickupZone=zone, dropoffZone=zone, passengerCount=1, distanceTravelled=0.0, fare=None,
    )


def air_station(station: str, at: datetime, *, caqi: int, zone: str = "Z11") -> AirQualityObserved:
    return AirQualityObserved(
        id=AirQualityObserved.make_id(station), dateObserved=at, name=station, location=zone_centre(zone),
        zone=zone, no2=40.0, pm10=20.0, pm25=10.0, o3=60.0, co=0.4, airQualityIndex=caqi,
        airQualityLevel="low" if caqi < 50 else "high",
    )


def publish_events(bus: EventBus, events: Iterable[CityEvent], topic_prefix: str = "") -> int:
    """Publish ``events`` in binary mode on ``<topic_prefix><their stream's topic>``; flush; return the count."""
    streams = {stream.model: stream for stream in STREAMS.values()}
    count = 0
    for event in events:
        stream = streams[type(event)]
        publish_event(bus, topic_prefix + stream.topic, reading_event(stream, event, SAMPLE_SOURCE))
        count += 1
    bus.flush()
    return count
