"""air-quality: pollutant concentrations that follow the simulated traffic and the weather.

No package ships a measured air-quality series for the city, so concentrations are modelled, and tied to the
other streams: the vehicles' NOx, PM and CO emissions come from SUMO's emission model (HBEFA) summed over the
station's zone (the city's mean for the background station), diluted by the wind, PM washed out by rain, ozone
made by sunshine and warmth and titrated by NO2. Each concentration relaxes towards its new level with a 20
minute time constant, as a station's running average would.
"""

from __future__ import annotations

import math
from datetime import datetime

from smartcity.events import AirQualityObserved
from smartcity.events.common import Location
from smartcity.simulator.city import Place
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.weather import diurnal

RELAX_S = 1200
# A background station stands away from the roads: it sees part of the city's mean zone emissions.
BACKGROUND_SHARE = 0.6
# CAQI (hourly) breakpoints: concentrations at the index values 25, 50, 75, 100
CAQI_GRID = {
    "no2": (50, 100, 200, 400),
    "pm10": (25, 50, 90, 180),
    "pm25": (15, 30, 55, 110),
    "o3": (60, 120, 180, 240),
    "co": (5, 7.5, 10, 20),  # mg/m³
}
CAQI_LEVELS = ("veryLow", "low", "medium", "high", "veryHigh")


def caqi(concentrations: dict[str, float]) -> int:
    """The Common Air Quality Index: the highest pollutant sub-index, piecewise linear on the CAQI grid."""
    worst = 0.0
    for pollutant, grid in CAQI_GRID.items():
        value, lower, index = concentrations[pollutant], 0.0, 0.0
        for step, upper in enumerate(grid, 1):
            if value <= upper or step == len(grid):
                worst = max(worst, index + 25 * (value - lower) / (upper - lower))
                break
            lower, index = upper, 25.0 * step
    return round(worst)


def caqi_level(index: int) -> str:
    return CAQI_LEVELS[min(4, index // 25)]


class AirQualitySource(Source):
    topic = "air-quality"
    every_s = 300

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        if context.traffic is None:
            raise ValueError("the air-quality source needs the SUMO simulation (its vehicles' emissions)")
        self.traffic = context.traffic
        self._levels: dict[str, dict[str, float]] = {}
        known = set(self.traffic.traci.edge.getIDList())
        self._edges = {zone: [e for e in self.city.segments_in(zone) if e in known]
                       for zone in self.city.extent.zone_ids}

    def observe(self, now: datetime) -> list[AirQualityObserved]:
        events = []
        for station in self.city.air_stations:
            target = self._equilibrium(station, now)
            level = self._levels.setdefault(station.id, target)
            keep = math.exp(-self.every_s / RELAX_S)
            for pollutant, value in target.items():
                level[pollutant] = keep * level[pollutant] + (1 - keep) * value
            rounded = {p: round(v, 3 if p == "co" else 1) for p, v in level.items()}
            index = caqi(rounded)
            events.append(AirQualityObserved(
                id=AirQualityObserved.make_id(station.id), dateObserved=now, name=station.name,
                location=Location.at(station.lon, station.lat), zone=station.zone, **rounded,
                airQualityIndex=index, airQualityLevel=caqi_level(index)))
        return events

    def _emissions(self, station: Place) -> dict[str, float]:
        """mg/s emitted in the station's zone, or in the mean zone for a background station."""
        if station.kind == "traffic":
            return self.traffic.edge_emissions(self._edges.get(station.zone, []))
        zones = [edges for edges in self._edges.values() if edges]
        total = self.traffic.edge_emissions([e for edges in zones for e in edges])
        return {name: BACKGROUND_SHARE * value / max(1, len(zones)) for name, value in total.items()}

    def _equilibrium(self, station: Place, now: datetime) -> dict[str, float]:
        weather = self.state.weather
        local = now.astimezone(self.city.timezone)
        dilution = 1 / (weather.wind_speed + 0.5)
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (local.timetuple().tm_yday - 15) / 365)
        emitted = self._emissions(station)
        noise = self.rng.gauss(1, 0.05)
        no2 = (16 + 10 * winter + 17 * emitted["nox"] * dilution) * noise
        washout = 1 / (1 + 0.4 * weather.precipitation)
        pm10 = (11 + 6 * winter + 27 * emitted["pmx"] * dilution) * washout * noise
        sunshine = diurnal(local.hour + local.minute / 60) * (1 - winter * 0.6)
        o3 = max(2.0, 25 + 70 * sunshine + 1.2 * max(0.0, weather.temperature - 15) - 0.45 * no2)
        co = (0.18 + 0.017 * emitted["co"] * dilution) * noise
        return {"no2": no2, "pm10": pm10, "pm25": 0.65 * pm10, "o3": o3, "co": co}
