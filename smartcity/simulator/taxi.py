"""taxi-vtc: taxi and ride-hailing (VTC) trips driven through the SUMO simulation, with GPS fixes.

A fleet of licensed taxis and VTC cars waits parked across the city. Ride requests arrive with the daily
profile (plus a night-life bump); the nearest free car drives, as a real SUMO vehicle in the simulated traffic,
to the pickup and then to the drop-off. Every 10 s of city time each busy car reports a GPS fix; the last fix of a
trip carries the fare (Cologne-like tariff: base fare plus a rate per km). Plates, driver ids and GPS fixes are
personal data, marked so in the schema; the ingest step pseudonymizes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smartcity.events import TaxiTrip
from smartcity.events.common import Location
from smartcity.simulator.city import RoadSegment, metres
from smartcity.simulator.profiles import bump, daily_profile, poisson
from smartcity.simulator.source import Source, SourceContext

PEAK_REQUESTS_PER_HOUR = 40
FLEET = {"taxi": 10, "vtc": 6}
TARIFF = {"taxi": (4.30, 2.30), "vtc": (3.90, 2.05)}  # (base EUR, EUR per km)


@dataclass
class Car:
    """One car of the fleet: where it is parked, or which trip it is on and in which phase."""

    number: int
    service: str
    plate: str
    driver: str
    edge: str
    trip: _Trip | None = None


@dataclass
class _Trip:
    number: int
    pickup: RoadSegment
    dropoff: RoadSegment
    passengers: int
    phase: str = "toPickup"  # then onTrip
    leg: int = 0

    @property
    def id(self) -> str:
        return f"trip-{self.number:06}"


class TaxiSource(Source):
    topic = "taxi-vtc"
    every_s = 10

    def __init__(self, context: SourceContext, fleet: dict[str, int] | None = None) -> None:
        super().__init__(context)
        if context.traffic is None:
            raise ValueError("the taxi source needs the SUMO simulation")
        self.traffic = context.traffic
        known = set(self.traffic.traci.edge.getIDList())
        self.places = [s for s in self.city.segments.values() if s.length >= 30 and s.id in known]
        self.cars = [self._car(n, service) for n, service in enumerate(
            [service for service, size in (fleet or FLEET).items() for _ in range(size)], 1)]
        self._trips = 0

    def _car(self, number: int, service: str) -> Car:
        prefix = "K-TX" if service == "taxi" else "K-VT"
        return Car(number, service, f"{prefix} {self.rng.randrange(1000, 9999)}",
                   f"DRV-{self.rng.randrange(10000, 99999)}", self.rng.choice(self.places).id)

    def observe(self, now: datetime) -> list[TaxiTrip]:
        self._dispatch(now)
        events = []
        for car in self.cars:
            if car.trip is not None:
                event = self._advance(car, now)
                if event is not None:
                    events.append(event)
        return events

    def _dispatch(self, now: datetime) -> None:
        local = now.astimezone(self.city.timezone)
        hour = local.hour + local.minute / 60
        rate = PEAK_REQUESTS_PER_HOUR * (daily_profile(hour, local.weekday() < 5) + 0.5 * bump(hour % 24, 23.5, 1.5))
        for _ in range(poisson(self.rng, rate * self.every_s / 3600)):
            free = [car for car in self.cars if car.trip is None]
            if not free:
                return
            pickup, dropoff = self.rng.sample(self.places, 2)
            car = min(free, key=lambda c: metres(self.city.segments[c.edge].lon, self.city.segments[c.edge].lat,
                                                 pickup.lon, pickup.lat))
            self._trips += 1
            trip = _Trip(self._trips, pickup, dropoff, self.rng.choice([1, 1, 1, 2, 2, 3, 4]))
            if self.traffic.add_trip(self._vehicle(car, trip), car.edge, pickup.id):
                car.trip = trip

    @staticmethod
    def _vehicle(car: Car, trip: _Trip) -> str:
        return f"taxi{car.number}.{trip.id}.{trip.leg}"

    def _advance(self, car: Car, now: datetime) -> TaxiTrip | None:
        trip = car.trip
        vehicle = self._vehicle(car, trip)
        if vehicle not in self.traffic.arrived:
            fix = self.traffic.vehicle_fix(vehicle)
            if fix is None:  # waiting to enter the road
                return None
            lon, lat, speed, heading, distance = fix
            return self._event(car, trip, now, lon, lat, speed, heading, distance if trip.phase == "onTrip" else 0.0)
        self.traffic.arrived.discard(vehicle)
        if trip.phase == "toPickup":
            trip.phase, trip.leg = "onTrip", 1
            if not self.traffic.add_trip(self._vehicle(car, trip), trip.pickup.id, trip.dropoff.id):
                car.edge, car.trip = trip.pickup.id, None  # no way there: the ride is given up
            return None
        distance = self.traffic.route_length(trip.pickup.id, trip.dropoff.id)
        car.edge, car.trip = trip.dropoff.id, None
        base, per_km = TARIFF[car.service]
        return self._event(car, trip, now, trip.dropoff.lon, trip.dropoff.lat, 0.0, 0.0, distance, "completed",
                           fare=round(base + per_km * distance / 1000, 2))

    def _event(self, car: Car, trip: _Trip, now: datetime, lon: float, lat: float, speed: float, heading: float,
               distance: float, status: str | None = None, fare: float | None = None) -> TaxiTrip:
        return TaxiTrip(
            id=TaxiTrip.make_id(trip.id), dateObserved=now, serviceType=car.service, vehicleId=car.plate,
            driverId=car.driver, tripStatus=status or trip.phase, location=Location.at(lon, lat),
            zone=self.city.extent.zone_of(lon, lat), speed=round(speed, 1), heading=round(heading, 1) % 360,
            pickupZone=trip.pickup.zone, dropoffZone=trip.dropoff.zone, passengerCount=trip.passengers,
            distanceTravelled=round(distance, 1), fare=fare)
