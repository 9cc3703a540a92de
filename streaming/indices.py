"""The formulas of the streaming jobs, written once for Python numbers and Spark Columns alike.

Each formula uses arithmetic operators plus the helpers here (:func:`clip01`, :func:`or_zero`, :func:`present`,
:func:`ratio`), which dispatch on their argument: a Spark ``Column`` gives a Column expression, a number (or
None) gives a number. So the jobs compute with the very function that the unit tests check by hand.

Scores are in 0..1 with 1 the best for mobility; the congestion index is in 0..1 with 1 the worst.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

# the robust z-score is plain Python, shared with the anomaly models (which must not import pyspark)
from smartcity.robust import MAD_CONSISTENCY, ROBUST_Z_THRESHOLD, median_absolute_deviation, robust_z  # noqa: F401

# Urban free-flow speed: the speed at which a segment counts as not congested at all.
FREE_FLOW_KMH = 50.0
# Loop occupancy at which flow breaks down (traffic engineering puts it between 0.15 and 0.30).
CRITICAL_OCCUPANCY = 0.30
# Mean positive delay of the zone's buses at which the transit score reaches 0.
TRANSIT_DELAY_LIMIT_S = 600.0
# Trips waiting for a pickup in a zone within 5 minutes at which the taxi score reaches 0.
TAXI_DEMAND_LIMIT = 50.0
# CAQI at which the air score reaches 0 (above 100 is the CAQI's "very high" band).
CAQI_LIMIT = 100.0
# Weights of the mobility index's components; a component with no data in a window is left out.
MOBILITY_WEIGHTS: Mapping[str, float] = {
    "traffic": 0.30,
    "transit": 0.20,
    "bikes": 0.10,
    "parking": 0.15,
    "taxi": 0.10,
    "air": 0.15,
}


def _num(x: Any) -> Any:
    """A formula's input: a Column as it is; a number as a float, with NaN for absent (it propagates like null)."""
    if isinstance(x, Column):
        return x
    return math.nan if x is None else float(x)


def _out(x: Any) -> Any:
    """A formula's result: a Column as it is; a float, or None where it is NaN (absent)."""
    if isinstance(x, Column):
        return x
    return None if math.isnan(x) else x


def clip01(x: Any) -> Any:
    """``x`` bounded to 0..1 (absent stays absent)."""
    if isinstance(x, Column):
        return F.least(F.greatest(x, F.lit(0.0)), F.lit(1.0))
    return x if math.isnan(x) else min(max(x, 0.0), 1.0)


def or_zero(x: Any) -> Any:
    """``x``, or 0 when absent."""
    if isinstance(x, Column):
        return F.coalesce(x, F.lit(0.0))
    return 0.0 if math.isnan(x) else x


def present(x: Any) -> Any:
    """1 when ``x`` is there, else 0."""
    if isinstance(x, Column):
        return F.when(x.isNotNull(), F.lit(1.0)).otherwise(F.lit(0.0))
    return 0.0 if math.isnan(x) else 1.0


def ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator``; absent when either is absent or the denominator is 0."""
    if isinstance(numerator, Column) or isinstance(denominator, Column):
        return F.try_divide(numerator, F.when(F.lit(denominator) != 0, denominator))
    return math.nan if denominator == 0 or math.isnan(denominator) else numerator / denominator


def congestion_index(mean_speed_kmh: Any, occupancy: Any) -> Any:
    """0 (free flow) .. 1 (jammed): the mean of the speed deficit against free flow and the occupancy against
    the critical occupancy. With no vehicle (no speed), the speed deficit counts as 0."""
    speed, occupancy = _num(mean_speed_kmh), _num(occupancy)
    speed_deficit = or_zero(clip01(1 - ratio(speed, FREE_FLOW_KMH)))
    occupancy_load = clip01(ratio(occupancy, CRITICAL_OCCUPANCY))
    return _out(0.5 * speed_deficit + 0.5 * occupancy_load)


def component_scores(*, mean_speed_kmh: Any, occupancy: Any, mean_bus_delay_s: Any, bikes_available: Any,
                     bike_docks: Any, parking_occupied: Any, parking_spots: Any, taxi_waiting_trips: Any,
                     mean_caqi: Any) -> dict[str, Any]:
    """Each component's score 0..1 (1 is good); absent (None, null) where the window has no data for it.

    - traffic: 1 - :func:`congestion_index` of the zone's sensors (absent without occupancy readings);
    - transit: 1 - mean positive bus delay / :data:`TRANSIT_DELAY_LIMIT_S`;
    - bikes: bikes available / docks, over the zone's station reports;
    - parking: free spots / spots, over the zone's car park reports;
    - taxi: 1 - trips waiting for a pickup / :data:`TAXI_DEMAND_LIMIT`;
    - air: 1 - mean CAQI / :data:`CAQI_LIMIT`.
    """
    scores = {
        # absent with no occupancy reading (no traffic data); a missing speed alone reads as free flow
        "traffic": 1 - _num(congestion_index(mean_speed_kmh, occupancy)),
        "transit": clip01(1 - ratio(_num(mean_bus_delay_s), TRANSIT_DELAY_LIMIT_S)),
        "bikes": clip01(ratio(_num(bikes_available), _num(bike_docks))),
        "parking": clip01(1 - ratio(_num(parking_occupied), _num(parking_spots))),
        "taxi": clip01(1 - ratio(_num(taxi_waiting_trips), TAXI_DEMAND_LIMIT)),
        "air": clip01(1 - ratio(_num(mean_caqi), CAQI_LIMIT)),
    }
    return {name: _out(score) for name, score in scores.items()}


def mobility_index(scores: Mapping[str, Any]) -> Any:
    """0..100: the weighted mean of the component scores that are there (absent when none is)."""
    values = {name: _num(score) for name, score in scores.items()}
    numerator = sum(MOBILITY_WEIGHTS[name] * or_zero(score) for name, score in values.items())
    denominator = sum(MOBILITY_WEIGHTS[name] * present(score) for name, score in values.items())
    return _out(ratio(100 * numerator, denominator))
