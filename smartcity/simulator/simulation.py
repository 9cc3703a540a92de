"""The simulated city as a whole: the SUMO traffic and every stream's source, ticking in 5 s steps of city time.

Each tick injects due incidents, runs SUMO for 5 s, then asks every source whose cadence falls due for its
events. The same options and seed give the same events in the same order. The city is the configured one
(``SMARTCITY_CITY_FILE``); the streams that need the traffic simulation (:data:`NEEDS_TRAFFIC`) run on the city's
own SUMO network with its traffic loops, and the buses on its transit feed: a city without them (built from a GTFS
feed or GeoJSON; a network with no bus line) leaves those streams out with a logged message, or refuses them when
they were asked for by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

from smartcity.errors import ConfigurationError
from smartcity.events import STREAMS, TOPICS, CityEvent, Stream
from smartcity.simulator.air_quality import AirQualitySource
from smartcity.simulator.bikeshare import BikeShareSource
from smartcity.simulator.city import CityModel, load_city
from smartcity.simulator.incidents import IncidentPlan, IncidentSource
from smartcity.simulator.parking import ParkingSource
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.sumo import DETECTOR_PERIOD_S, TrafficSimulation
from smartcity.simulator.sumo_network import network_file
from smartcity.simulator.taxi import TaxiSource
from smartcity.simulator.traffic import TrafficSource
from smartcity.simulator.transit import TransitSource
from smartcity.simulator.weather import WeatherSource

TICK_S = DETECTOR_PERIOD_S
NEEDS_TRAFFIC = {"traffic-sensors", "taxi-vtc", "incidents", "air-quality"}
log = logging.getLogger(__name__)


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
        unknown = set(self.streams) - set(simulated_topics())
        if unknown:
            raise ValueError(f"streams: unknown {sorted(unknown)}; known: {', '.join(simulated_topics())}")


def simulated_topics() -> tuple[str, ...]:
    """The eight, then each other stream whose descriptor has a simulator ``source`` (simulated when named)."""
    return (*TOPICS, *(topic for topic, stream in STREAMS.items() if stream.source and topic not in TOPICS))


def missing_for_traffic(city: CityModel) -> str | None:
    """What the live traffic simulation lacks in the city (None: nothing): its SUMO network file, road segments
    or traffic loop sites."""
    net_file = network_file(city.extent)
    if net_file is None:
        return "no SUMO network in its city file"
    if not net_file.is_file():
        return f"its SUMO network {net_file} is missing"
    return missing_road_data(city)


def missing_road_data(city: CityModel) -> str | None:
    """What the traffic history (the macroscopic model, no SUMO) lacks in the city: road segments, loop sites."""
    if not city.has_network:
        return "no road segments"
    return None if city.extent.sites.traffic_loops else "no traffic loop sites (sites.traffic_loops)"


def simulates_traffic(city: CityModel) -> bool:
    """Whether the simulator can run traffic in the city: its SUMO network, segments and loops are there."""
    return missing_for_traffic(city) is None


def _without(options: SimulatorOptions, needing_topics: set[str], reason: str, named: bool) -> SimulatorOptions:
    """The options less ``needing_topics``, which the city cannot feed (``reason``): refused when the streams were
    ``named``, else logged."""
    needing = [topic for topic in options.streams if topic in needing_topics]
    if not needing:
        return options
    reason = f"{reason}: {', '.join(needing)} need it"
    if named:
        raise ConfigurationError("--streams", f"{reason}; leave them out")
    log.warning("%s; simulating without them", reason)
    return replace(options, streams=tuple(t for t in options.streams if t not in needing_topics))


def _feasible(options: SimulatorOptions, city: CityModel) -> SimulatorOptions:
    """The options less what the city lacks: a road network for the traffic streams, a transit feed for the buses
    (refused when the streams were named, rather than all of them by default)."""
    named = tuple(options.streams) != TOPICS
    if not simulates_traffic(city):
        options = _without(options, NEEDS_TRAFFIC, f"the city {city.extent.name} has no road network the simulator "
                                                   f"runs ({missing_for_traffic(city)})", named)
    if options.gtfs is None and city.extent.gtfs_file is None:
        options = _without(options, {"public-transport"}, f"the city {city.extent.name} has no transit feed "
                                                          "(transit.gtfs in its city file; or --gtfs)", named)
    return options


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
        city = load_city()
        options = _feasible(options, city)
        self.options = options
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
        makers |= {topic: lambda make=STREAMS[topic].source: make(context)
                   for topic in simulated_topics() if topic not in makers}
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
