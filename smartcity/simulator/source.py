"""What every stream source is: a cadence in city seconds and an ``observe(now)`` that returns events.

A source gets a :class:`SourceContext`: the seed (each source draws from its own random generator, so the same
seed gives the same events whatever other streams are on), the city, the shared :class:`CityState` and, when
traffic is simulated, the running SUMO simulation.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from smartcity.events import CityEvent, Stream, stream_for_topic
from smartcity.simulator.city import CityModel
from smartcity.simulator.state import CityState
from smartcity.simulator.sumo import DETECTOR_PERIOD_S, TrafficSimulation


@dataclass
class SourceContext:
    seed: int
    start: datetime
    city: CityModel
    state: CityState = field(default_factory=CityState)
    traffic: TrafficSimulation | None = None

    def random(self, name: str) -> random.Random:
        """A generator of its own for ``name``, seeded from the run's seed."""
        return random.Random(f"{self.seed}:{name}")


class Source(ABC):
    """One stream's source. The runner calls :meth:`observe` every ``every_s`` city seconds."""

    topic: ClassVar[str]
    every_s: int = 60

    def __init__(self, context: SourceContext) -> None:
        self.context = context
        self.city = context.city
        self.state = context.state
        self.rng = context.random(self.topic)

    @property
    def stream(self) -> Stream:
        return stream_for_topic(self.topic)

    def due(self, now: datetime) -> bool:
        """True on the first tick, then every ``every_s`` city seconds."""
        elapsed = int((now - self.context.start).total_seconds()) - DETECTOR_PERIOD_S
        return elapsed % self.every_s == 0

    @abstractmethod
    def observe(self, now: datetime) -> list[CityEvent]:
        """The stream's events at city time ``now``."""
