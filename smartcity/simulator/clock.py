"""City time: it starts at a chosen moment and runs ``speed`` times faster than the wall clock.

``speed=0`` means unpaced: the simulation runs as fast as it can (tests, benchmarks, back-filling).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Callable


class CityClock:
    """Paces the simulation: :meth:`wait_until` sleeps until the wall clock catches up with a city time."""

    def __init__(self, start: datetime, speed: float, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("the city clock needs a timezone-aware start")
        if speed < 0:
            raise ValueError("speed must be 0 (unpaced) or positive")
        self.start = start
        self.speed = speed
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall_start = monotonic()

    def due(self, city_time: datetime) -> float:
        """Wall-clock seconds (from the clock's creation) at which ``city_time`` is reached."""
        return (city_time - self.start).total_seconds() / self.speed if self.speed else 0.0

    def wait_until(self, city_time: datetime) -> None:
        if not self.speed:
            return
        remaining = self.due(city_time) - (self._monotonic() - self._wall_start)
        if remaining > 0:
            self._sleep(remaining)

    def lag_s(self, city_time: datetime) -> float:
        """How far (wall seconds) the simulation is behind where ``city_time`` should be; 0 when unpaced."""
        if not self.speed:
            return 0.0
        return max(0.0, (self._monotonic() - self._wall_start) - self.due(city_time))

    def now(self) -> datetime:
        """The city time the wall clock says it is now."""
        return self.start + timedelta(seconds=(self._monotonic() - self._wall_start) * self.speed)


class RateLimiter:
    """At most ``per_s`` events per wall second: :meth:`take` blocks (never drops) when ahead of the cap."""

    def __init__(self, per_s: float | None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_s = per_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._start = monotonic()
        self._taken = 0

    def take(self, count: int) -> None:
        if not self.per_s or count <= 0:
            return
        self._taken += count
        ahead = self._taken / self.per_s - (self._monotonic() - self._start)
        if ahead > 0:
            self._sleep(ahead)
