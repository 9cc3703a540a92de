"""Daily demand profiles and the random draws the sources share."""

from __future__ import annotations

import math
import random


def daily_profile(hour: float, weekday: bool = True) -> float:
    """Share of the peak hour's traffic at ``hour`` (0..24): morning and evening rush hours on weekdays."""
    base = 0.04 + 0.5 * bump(hour, 13.0, 5.0)
    if weekday:
        return min(1.0, base + 0.95 * bump(hour, 7.9, 1.1) + 0.9 * bump(hour, 17.4, 1.4))
    return min(1.0, 0.6 * base + 0.45 * bump(hour, 14.0, 3.5))


def bump(x: float, centre: float, width: float) -> float:
    """A Gaussian bump: 1 at ``centre``, about 0.6 at one ``width`` from it."""
    return math.exp(-0.5 * ((x - centre) / width) ** 2)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
