"""Measures rounded to the precision of their unit in every API answer, in this one place.

Sums and means of doubles carry binary noise (``28.131999999999998`` km/h) that no sensor measures; answers give
each float the decimals its unit warrants, chosen by the name of the field holding it (a list's items by the
list's name, GeoJSON ``coordinates`` included):

- coordinates (``lon``, ``lat``, a bounding box's ``west``/``south``/``east``/``north``, ``coordinates``): 6
  decimals, about 0.1 m;
- fractions of 0..1 (``occupancy``, ``*_share``, ``congestion_index*``, ``coverage``, ``*_fraction``,
  ``*punctuality``, the mobility index's ``*_score``): 3 decimals, 0.1 %;
- speeds (``*_kmh``, ``speed``), flows (``*_per_hour``), headings, seconds (``*_s``), the mobility
  index (0..100), fares, errors (``mae``) and forecast quantiles (``p10``/``p50``/``p90``): 2 decimals;
- any other float: 6 decimals.

A float is rounded as ``round(value * 10**d) / 10**d``: the integer division gives the double nearest the
decimal, as ``round(value, d)`` does, in less than half its time (``round`` with digits goes through a decimal
string); the two differ only on values within a rounding error of a half (``0.025`` becomes 0.02, where
``round(0.025, 2)`` gives 0.03: that double is a little above 0.025), well inside what any unit here measures.
NaN and infinities are kept.

:func:`smartcity.api.caching.json_body` and :func:`~smartcity.api.caching.document_body` pass every answer through
:func:`rounded`; the traffic history, the busiest uncached read, rounds its rows with :func:`rounded_rows`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

COORDINATES = frozenset({"lon", "lat", "longitude", "latitude", "west", "south", "east", "north", "coordinates",
                         "centroid", "bbox"})
FRACTIONS = ("occupancy", "_share", "congestion_index", "congestion_index_max", "coverage", "_fraction",
             "punctuality", "_score")
UNITS = ("_kmh", "speed", "_per_hour", "heading", "_s", "mobility_index", "fare", "mae", "p10",
         "p50", "p90")
OTHER_DECIMALS = 6


@lru_cache(maxsize=1024)
def scale_of(name: str) -> float:
    """``10 ** decimals_of(name)``: what a float under ``name`` is multiplied by before it is rounded."""
    return 10.0 ** decimals_of(name)


def round_scaled(value: float, scale: float) -> float:
    """``value`` rounded to ``1 / scale``; NaN and infinities as they are (a product too large to round has no
    decimals left to round either)."""
    scaled = value * scale
    return round(scaled) / scale if math.isfinite(scaled) else value


@lru_cache(maxsize=1024)
def decimals_of(name: str) -> int:
    """The decimals a float under the field ``name`` keeps."""
    if name in COORDINATES:
        return 6
    if name.endswith(FRACTIONS):
        return 3
    if name.endswith(UNITS):
        return 2
    return OTHER_DECIMALS


def rounded(value: Any, name: str = "") -> Any:
    """``value`` (JSON-ready data) with each float rounded by :func:`decimals_of` the field it is under."""
    kind = type(value)
    if kind is float:
        return round_scaled(value, scale_of(name))
    if kind is dict:
        # inline for the common leaves: answers hold thousands of them
        return {key: round_scaled(item, scale_of(key)) if type(item) is float
                else rounded(item, key) if type(item) in _CONTAINERS else item
                for key, item in value.items()}
    if kind in _CONTAINERS:
        return [rounded(item, name) for item in value]
    return value


_CONTAINERS = (dict, list, tuple)


def rounded_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows of the same columns (a query's, in its order) rounded as :func:`rounded` rounds them, in half its
    time: each column's decimals are found once. A value in a row is a float, or not a container."""
    if not rows:
        return rows
    columns = [(name, scale_of(name)) for name in rows[0]]
    try:  # round_scaled inlined: a history page has hundreds of floats
        return [{name: round(value * scale) / scale if type(value) is float else value
                 for (name, scale), value in zip(columns, row.values())} for row in rows]
    except (ValueError, OverflowError):  # a NaN or an infinity among them
        return [{name: round_scaled(value, scale) if type(value) is float else value
                 for (name, scale), value in zip(columns, row.values())} for row in rows]
