"""Robust statistics in plain Python (no pyspark): the modified z-score of the streaming anomaly job, which the
anomaly models keep as their baseline. :mod:`streaming.indices` re-exports them beside its Spark formulas."""

from __future__ import annotations

import math
from statistics import median
from typing import Sequence

# Iglewicz and Hoaglin: |modified z| above 3.5 is an outlier; 0.6745 makes the MAD consistent with a std dev.
ROBUST_Z_THRESHOLD = 3.5
MAD_CONSISTENCY = 0.6745


def median_absolute_deviation(values: Sequence[float]) -> tuple[float, float]:
    """``(median, MAD)`` of ``values`` (at least one)."""
    centre = median(values)
    return centre, median(abs(value - centre) for value in values)


def robust_z(value: float, baseline: Sequence[float]) -> float | None:
    """The modified z-score of ``value`` against ``baseline``: 0.6745 (value - median) / MAD.

    None when the baseline has no spread (MAD 0): every past value was the median, and no scale says how far
    off a different value is.
    """
    centre, mad = median_absolute_deviation(baseline)
    if mad == 0 or math.isnan(mad):
        return None
    return MAD_CONSISTENCY * (value - centre) / mad
