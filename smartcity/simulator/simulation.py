"""The simulated city as a whole: the SUMO traffic and every stream's source, ticking in 5 s steps of city time.

Each tick injects due incidents, runs SUMO for 5 s, then asks every source whose cadence falls due for its
events. The same options and seed give the same events in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

from smartcity.events import CityEvent, Stream
from smartcity.settings import TOPICS
from smartcity.simulator.air_quality import AirQualitySource
from smartcity.simulator.bikeshare import BikeShareSource
from smartcity.simulator.city import load_city
from smartcity.simulator.incidents import IncidentPlan, IncidentSource
from smartcity.simulator.parking import ParkingSource
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.sumo import DETECTOR_PERIOD_S, TrafficSimulation
from smartcity.simulator.taxi import TaxiSource
from smartcity.simulator.traffic import TrafficSource
from smartcity.simulator.transit import TransitSource
from smartcity.simulator.weather import WeatherSource

TICK_S = DETECTOR_PERIOD_S
NEEDS_TRAFFIC = {"traffic-sensors", "taxi-vtc", "incidents", "air-quality"}


@dataclass(frozen=True)
class SimulatorOptions:
    """What to simulate. ``sensors`` None: one per lane of the network; more than that: scale-out replicas."""

    start: datetime
    seed: int = 1
    sensors: int | None = None
    streams: tuple[str, ...] = TOPICS
    incidents: tuple[IncidentPlan, ...] = ()
    incidents_per_day: float = 4.0
    gtfs: Path | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start: a timezone is required")
        unknown = set(self.streams) - set(TOPICS)
        if unknown:
            raise ValueError(f"streams: unknown {sorted(unknown)}; known: {', '.join(TOPICS)}")


@dataclass
class Tick:
    """The events of one 5 s step, per stream, in a fixed order."""

    time: datetime
    events: list[tuple[Stream, list[CityEvent]]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(events) for _, events in self.events)


class CitySimulation:
    """Builds the sources the options ask for; :meth:`ticks` runs the city. Close it (or use ``with``)."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.options = options
        city = load_city()
        start = options.start - timedelta(seconds=options.start.timestamp() % TICK_S)
        local = start.astimezone(city.timezone)
        traffic = None
        if NEEDS_TRAFFIC & set(options.streams):
            seconds_of_day = local.hour * 3600 + local.minute * 60 + local.second
            traffic = TrafficSimulation(options.seed, seconds_of_day, detector_lanes=options.sensors)
        self.traffic = traffic
        self.start = start
        self.context = SourceContext(options.seed, start, city, traffic=traffic)
        self.sources = self._sources(options)

    def _sources(self, options: SimulatorOptions) -> list[Source]:
        context, wanted = self.context, set(options.streams)
        # incidents first: an obstacle placed this tick acts during the SUMO seconds that follow
        makers = {
            "incidents": lambda: IncidentSource(context, list(options.incidents), options.incidents_per_day),
            "weather": lambda: WeatherSource(context),
            "traffic-sensors": lambda: TrafficSource(context, options.sensors),
            "public-transport": lambda: TransitSource(context, options.gtfs),
            "taxi-vtc": lambda: TaxiSource(context),
            "parking": lambda: ParkingSource(context),
            "bike-share": lambda: BikeShareSource(context),
            "air-quality": lambda: AirQualitySource(context),
        }
        if "air-quality" in wanted or "bike-share" in wanted:
            wanted.add("weather")  # they read the weather; it is computed, published only if asked for
        return [make() for topic, make in makers.items() if topic in wanted]

    def ticks(self) -> Iterator[Tick]:
        now, end = self.start, None
        if self.options.duration_s is not None:
            end = self.start + timedelta(seconds=self.options.duration_s)
        before = [s for s in self.sources if isinstance(s, IncidentSource)]
        after = [s for s in self.sources if not isinstance(s, IncidentSource)]
        while end is None or now < end:
            tick = Tick(now + timedelta(seconds=TICK_S))
            for source in before:
                self._collect(tick, source, now)
            if self.traffic is not None:
                self.traffic.advance(TICK_S, weekday=now.astimezone(self.context.city.timezone).weekday() < 5)
            now = tick.time
            for source in after:
                if source.due(now):
                    self._collect(tick, source, now)
            yield tick

    def _collect(self, tick: Tick, source: Source, now: datetime) -> None:
        events = source.observe(now)
        if events and source.topic in self.options.streams:
            tick.events.append((source.stream, events))

    def close(self) -> None:
        if self.traffic is not None:
            self.traffic.close()
            self.traffic = None

    def __enter__(self) -> CitySimulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
