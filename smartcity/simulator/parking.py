"""parking: off-street car parks filling and emptying over the day.

Each car park's occupancy is a birth-death process: every minute cars arrive and leave (Poisson counts) so that
occupancy tracks a daily target (shops and offices by day, residents in the evening), pulled up at the hours
the daily traffic profile (:func:`smartcity.simulator.profiles.daily_profile`) says are busy. Capacities and places come from the city description; the process is modelled.
"""

from __future__ import annotations

import math
from datetime import datetime

from smartcity.events import OffStreetParking
from smartcity.events.common import Location, ngsi_id
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.profiles import bump, daily_profile, poisson

RELAX_S = 1800
STAY_MINUTES = 150


def target_occupancy(hour: float, weekday: bool) -> float:
    """Share of spots taken that the car parks drift towards at ``hour``."""
    if weekday:
        return 0.12 + 0.72 * bump(hour, 12.0, 3.2) + 0.25 * bump(hour, 20.0, 1.8)
    return 0.10 + 0.60 * bump(hour, 14.5, 3.0) + 0.2 * bump(hour, 20.5, 1.5)


class ParkingSource(Source):
    topic = "parking"
    every_s = 60

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        local = context.start.astimezone(self.city.timezone)
        start_target = target_occupancy(local.hour + local.minute / 60, local.weekday() < 5)
        self.occupied = {p.id: round(p.capacity * start_target) for p in self.city.car_parks}

    def observe(self, now: datetime) -> list[OffStreetParking]:
        local = now.astimezone(self.city.timezone)
        hour, weekday = local.hour + local.minute / 60, local.weekday() < 5
        traffic_boost = 0.9 + 0.2 * daily_profile(hour, weekday)
        events = []
        for park in self.city.car_parks:
            occupied = self.occupied[park.id]
            target = min(1.0, target_occupancy(hour, weekday) * traffic_boost) * park.capacity
            leaving = occupied * self.every_s / 60 / STAY_MINUTES
            arriving = max(0.0, leaving + (target - occupied) * (1 - math.exp(-self.every_s / RELAX_S)))
            occupied += poisson(self.rng, arriving) - poisson(self.rng, leaving)
            occupied = min(park.capacity, max(0, occupied))
            self.occupied[park.id] = occupied
            share = occupied / park.capacity
            events.append(OffStreetParking(
                id=OffStreetParking.make_id(park.id), dateObserved=now, name=park.name,
                location=Location.at(park.lon, park.lat), zone=park.zone, refRoadSegment=ngsi_id("RoadSegment", park.edge),
                totalSpotNumber=park.capacity, occupiedSpotNumber=occupied, availableSpotNumber=park.capacity - occupied,
                occupancy=round(share, 4),
                status="full" if occupied == park.capacity else "almostFull" if share >= 0.9 else "open"))
        return events
