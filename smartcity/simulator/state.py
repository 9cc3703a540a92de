"""What the sources share while the city runs, so streams stay consistent with each other.

The traffic source writes each zone's traffic; air quality reads it (pollution follows traffic) and so do the
buses (their delays grow in congested zones). The weather source writes the weather; bike trips and air quality
read it (rain keeps cyclists home and washes particles out, wind disperses them).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ZoneTraffic:
    """A zone's traffic over the last interval: mean loop occupancy (0..1), mean speed (km/h), vehicles/h."""

    occupancy: float = 0.0
    speed_kmh: float | None = None
    vehicles_per_hour: float = 0.0


@dataclass
class WeatherNow:
    temperature: float = 10.0
    relative_humidity: float = 0.75
    precipitation: float = 0.0
    wind_speed: float = 3.0


@dataclass
class CityState:
    traffic: dict[str, ZoneTraffic] = field(default_factory=dict)
    weather: WeatherNow = field(default_factory=WeatherNow)
    # NOx, PMx and CO emitted by the vehicles of each zone (mg/s), from SUMO's emission model
    emissions: dict[str, dict[str, float]] = field(default_factory=dict)

    def congestion(self, zone: str) -> float:
        """0 (free flow) .. 1 (standstill): the zone's mean loop occupancy, saturating at 50 %."""
        traffic = self.traffic.get(zone)
        return min(1.0, traffic.occupancy / 0.5) if traffic else 0.0
