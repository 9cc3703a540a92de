"""bike-share: docking stations with GBFS semantics, bikes moving between them.

Trips start at a station with a bike and end at another one after a ride at 15 km/h; a bike arriving at a full
station goes to the nearest one with a free dock, as a rider would. Trip demand follows a daily profile and the
shared weather (rain and cold keep cyclists home). A van rebalances stations every two hours; docks break and are
repaired now and then. Every station reports its status every minute (GBFS ``ttl`` 60 s).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from smartcity.events import BikeHireDockingStation
from smartcity.events.common import Location
from smartcity.simulator.city import Place, metres
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.profiles import daily_profile, poisson

PEAK_TRIPS_PER_HOUR = 60
RIDE_SPEED_MS = 15 / 3.6
REBALANCE_EVERY = timedelta(hours=2)


def weather_factor(temperature: float, precipitation: float) -> float:
    return (0.3 if precipitation > 0.5 else 0.7 if precipitation > 0 else 1.0) * (0.6 if temperature < 3 else 1.0)


class BikeShareSource(Source):
    topic = "bike-share"
    every_s = 60

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self.stations = {s.id: s for s in self.city.bike_stations}
        self.bikes = {s.id: s.capacity // 2 + self.rng.randint(-2, 2) for s in self.city.bike_stations}
        self.broken = {s.id: 0 for s in self.city.bike_stations}
        self._riding: list[tuple[datetime, int, str]] = []  # (arrival, trip number, destination)
        self._trips = 0
        self._last_rebalance = context.start

    def free_docks(self, station: str) -> int:
        return self.stations[station].capacity - self.bikes[station] - self.broken[station]

    def observe(self, now: datetime) -> list[BikeHireDockingStation]:
        self._arrivals(now)
        self._departures(now)
        self._breakdowns()
        if now - self._last_rebalance >= REBALANCE_EVERY:
            self._rebalance()
            self._last_rebalance = now
        return [self._status(station, now) for station in self.stations.values()]

    def _departures(self, now: datetime) -> None:
        local = now.astimezone(self.city.timezone)
        weather = self.state.weather
        rate = (PEAK_TRIPS_PER_HOUR * daily_profile(local.hour + local.minute / 60, local.weekday() < 5)
                * weather_factor(weather.temperature, weather.precipitation) * self.every_s / 3600)
        for _ in range(poisson(self.rng, rate)):
            ready = [s for s in self.stations if self.bikes[s]]
            if not ready:
                return
            origin = self.rng.choice(ready)
            destination = self.rng.choice([s for s in self.stations if s != origin])
            self.bikes[origin] -= 1
            self._trips += 1
            ride_s = metres(*self._lonlat(origin), *self._lonlat(destination)) * 1.3 / RIDE_SPEED_MS + 60
            heapq.heappush(self._riding, (now + timedelta(seconds=ride_s), self._trips, destination))

    def _arrivals(self, now: datetime) -> None:
        while self._riding and self._riding[0][0] <= now:
            _, _, destination = heapq.heappop(self._riding)
            if self.free_docks(destination) <= 0:
                open_ones = [s for s in self.stations if self.free_docks(s) > 0]
                if not open_ones:  # every dock taken: the rider waits a minute and tries again
                    heapq.heappush(self._riding, (now + timedelta(minutes=1), self._trips, destination))
                    return
                destination = min(open_ones, key=lambda s: metres(*self._lonlat(s), *self._lonlat(destination)))
            self.bikes[destination] += 1

    def _breakdowns(self) -> None:
        for station in self.stations.values():
            if self.broken[station.id] and self.rng.random() < 0.01:
                self.broken[station.id] -= 1
            elif self.free_docks(station.id) > 0 and self.rng.random() < 0.002:
                self.broken[station.id] += 1

    def _rebalance(self) -> None:
        """Move bikes from the fullest station to the emptiest, up to half the difference."""
        by_fill = sorted(self.stations, key=lambda s: self.bikes[s] / self.stations[s].capacity)
        emptiest, fullest = by_fill[0], by_fill[-1]
        moved = min((self.bikes[fullest] - self.bikes[emptiest]) // 2, self.free_docks(emptiest))
        if moved > 0:
            self.bikes[fullest] -= moved
            self.bikes[emptiest] += moved

    def _lonlat(self, station: str) -> tuple[float, float]:
        return self.stations[station].lon, self.stations[station].lat

    def _status(self, station: Place, now: datetime) -> BikeHireDockingStation:
        bikes, free, broken = self.bikes[station.id], self.free_docks(station.id), self.broken[station.id]
        status = ("empty" if bikes == 0 else "full" if free == 0 else "almostEmpty" if bikes <= 2
                  else "almostFull" if free <= 2 else "working")
        return BikeHireDockingStation(
            id=BikeHireDockingStation.make_id(station.id), dateObserved=now, name=station.name,
            location=Location.at(station.lon, station.lat), zone=station.zone, totalSlotNumber=station.capacity,
            availableBikeNumber=bikes, freeSlotNumber=free, outOfServiceSlotNumber=broken, isInstalled=True,
            isRenting=True, isReturning=True, status=status, dateLastReported=now)
