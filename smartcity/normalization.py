"""A reading as ingest receives it, in key-value form and the model's units: NGSI-LD normalized attributes
unwrapped (``{"type": "Property", "value": 12, "unitCode": "MTS"}``), a value whose unit is given (``unitCode``, or a
key or column named ``field[unit]`` such as ``averageVehicleSpeed[m/s]``) converted to the unit of the model's
field (:data:`CONVERSIONS`), and ``lon``/``lat`` columns made a GeoJSON ``location``. Used by :mod:`smartcity.ingest`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from smartcity.events import CityEvent

UNIT_ALIASES = {
    "KMH": "km/h", "kmh": "km/h", "MTS": "m/s", "HM": "mph", "P1": "%", "percent": "%", "C62": "ratio 0..1",
    "ratio": "ratio 0..1", "CEL": "°C", "FAH": "°F", "KEL": "K", "A97": "hPa", "PAL": "Pa", "KPA": "kPa",
    "MTR": "m", "KMT": "km", "SEC": "s", "MIN": "min", "MMT": "mm", "GQ": "µg/m³", "ug/m3": "µg/m³",
    "µg/m3": "µg/m³", "GP": "mg/m³", "mg/m3": "mg/m³", "DD": "degrees", "deg": "degrees",
}
CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("m/s", "km/h"): lambda v: v * 3.6,
    ("mph", "km/h"): lambda v: v * 1.609344,
    ("km/h", "m/s"): lambda v: v / 3.6,
    ("%", "ratio 0..1"): lambda v: v / 100,
    ("°F", "°C"): lambda v: (v - 32) * 5 / 9,
    ("K", "°C"): lambda v: v - 273.15,
    ("Pa", "hPa"): lambda v: v / 100,
    ("kPa", "hPa"): lambda v: v * 10,
    ("km", "m"): lambda v: v * 1000,
    ("min", "s"): lambda v: v * 60,
    ("µg/m³", "mg/m³"): lambda v: v / 1000,
    ("mg/m³", "µg/m³"): lambda v: v * 1000,
}
_COORDINATES = (("lon", "lat"), ("longitude", "latitude"))


class ItemError(ValueError):
    """One reading is refused: which field (empty: the reading as a whole), and why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def unit_of(model: type[CityEvent], name: str) -> str | None:
    info = model.model_fields.get(name)
    extra = info.json_schema_extra if info is not None else None
    return extra.get("unit") if isinstance(extra, dict) else None


def convert(model: type[CityEvent], name: str, value: Any, unit: str) -> float:
    """``value`` given in ``unit``, in the unit of the model's field ``name``."""
    target = unit_of(model, name)
    if target is None:
        raise ItemError(name, f"a unit ({unit!r}) was given, but the field is not a measure")
    source = UNIT_ALIASES.get(unit, unit)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ItemError(name, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ItemError(name, f"{value!r} is not a finite number")
    if source == target:
        return number
    conversion = CONVERSIONS.get((source, target))
    if conversion is None:
        known = sorted({s for s, t in CONVERSIONS if t == target} | {target})
        raise ItemError(name, f"unit {unit!r} cannot be converted to {target}; known units: {', '.join(known)}")
    return conversion(number)


def normalize(model: type[CityEvent], item: Any) -> dict[str, Any]:
    """A reading in key-value form, in the model's units (NGSI-LD attributes unwrapped, ``field[unit]`` converted)."""
    if not isinstance(item, Mapping):
        raise ItemError("", f"expected an object, got {type(item).__name__}")
    result: dict[str, Any] = {}
    for key, value in item.items():
        if str(key).startswith("@"):  # NGSI-LD @context: the model is the context
            continue
        name, unit = _split_unit(str(key))
        if isinstance(value, Mapping) and value.get("type") in ("Property", "GeoProperty", "Relationship"):
            unit = value.get("unitCode", unit)
            value = value.get("object") if value["type"] == "Relationship" else value.get("value")
        result[name] = convert(model, name, value, unit) if unit is not None and value is not None else value
    for lon_key, lat_key in _COORDINATES:
        if "location" not in result and lon_key in result and lat_key in result:
            lon, lat = result.pop(lon_key), result.pop(lat_key)
            result["location"] = {"type": "Point", "coordinates": [_number(lon_key, lon), _number(lat_key, lat)]}
    return result


def _split_unit(key: str) -> tuple[str, str | None]:
    if key.endswith("]") and "[" in key:
        name, _, unit = key[:-1].partition("[")
        return name.strip(), unit.strip()
    return key, None


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ItemError(name, f"{value!r} is not a number") from None
