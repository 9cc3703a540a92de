"""What every event model shares: the base class, NGSI-LD ids, the city-bounded GeoJSON point, units, zones.

Attribute names follow FIWARE's Smart Data Models (camelCase, ``dateObserved``, ``location`` as a GeoJSON Point).
Every model is strict: unknown fields are refused (``extra="forbid"``), timestamps must carry a timezone, ids
are ``urn:ngsi-ld:<Type>:<id>`` with ``<Type>`` the model's NGSI type. A validation error names each bad field;
:func:`errors_by_field` turns it into ``{"location.coordinates": "reason"}`` for a dead-letter record or an HTTP 422.

Points must lie in the configured city (:mod:`smartcity.city`, ``SMARTCITY_CITY_FILE``; the bundled Cologne
district by default): its boundary, and its zones for the ``zone`` fields.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from smartcity.city import CityDefinition, configured_city

NGSI_PREFIX = "urn:ngsi-ld:"
# Characters a URN's specific part may hold unencoded (RFC 8141); anything else is percent-encoded.
_URN_SAFE = "-._~!$&'()*+,;=:@"
_URN_LOCAL_PATTERN = r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]+"
_URN_LOCAL_ID = re.compile(_URN_LOCAL_PATTERN)


def city() -> CityDefinition:
    """The configured city (``SMARTCITY_CITY_FILE``; read once per file)."""
    return configured_city()


def ngsi_id(ngsi_type: str, local_id: str) -> str:
    """``urn:ngsi-ld:<Type>:<local id>``, percent-encoding what a URN may not hold (SUMO ids carry ``#``)."""
    return f"{NGSI_PREFIX}{ngsi_type}:{quote(local_id, safe=_URN_SAFE)}"


def measure(description: str, unit: str, **constraints: Any) -> Any:
    """A required numeric field with its unit in the description and in the JSON Schema (``"unit"``)."""
    return Field(description=f"{description} ({unit})", json_schema_extra={"unit": unit}, **constraints)


def optional_measure(description: str, unit: str, **constraints: Any) -> Any:
    """Like :func:`measure`, for a measure that may be absent (``null``)."""
    return Field(None, description=f"{description} ({unit})", json_schema_extra={"unit": unit}, **constraints)


def personal(description: str, **options: Any) -> Any:
    """A field holding personal data, marked ``"personal": true`` in the model and the JSON Schema.

    The ingest step finds these with :func:`personal_fields` and pseudonymizes them.
    """
    return Field(description=description, json_schema_extra={"personal": True}, **options)


def personal_fields(model: type[BaseModel]) -> list[str]:
    """Names of the fields of ``model`` marked personal."""
    return [
        name for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("personal")
    ]


def errors_by_field(error: ValidationError) -> dict[str, str]:
    """A validation error as ``{"dotted.field.path": "reason"}``; ``"<event>"`` for errors of the whole event."""
    reasons: dict[str, str] = {}
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "<event>"
        reasons[field] = f"{reasons[field]}; {item['msg']}" if field in reasons else item["msg"]
    return reasons


def _city_bounds_schema(schema: dict[str, Any]) -> None:
    box = city()
    schema["description"] = f"[longitude, latitude] (WGS84 degrees) inside the city of {box.name}"
    schema["prefixItems"] = [
        {"type": "number", "minimum": box.west, "maximum": box.east, "title": "longitude"},
        {"type": "number", "minimum": box.south, "maximum": box.north, "title": "latitude"},
    ]


class Location(BaseModel):
    """A GeoJSON Point ``{"type": "Point", "coordinates": [lon, lat]}`` inside the city's bounding box."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(json_schema_extra=_city_bounds_schema)

    @field_validator("coordinates")
    @classmethod
    def _inside_city(cls, value: tuple[float, float]) -> tuple[float, float]:
        lon, lat = value
        box = city()
        if not box.west <= lon <= box.east:
            raise ValueError(f"longitude {lon} is outside the city {box.name} ({box.west} .. {box.east})")
        if not box.south <= lat <= box.north:
            raise ValueError(f"latitude {lat} is outside the city {box.name} ({box.south} .. {box.north})")
        if not box.contains(lon, lat):
            raise ValueError(f"[{lon}, {lat}] is outside the boundary of the city {box.name}")
        return value

    @classmethod
    def at(cls, lon: float, lat: float) -> Location:
        return cls(coordinates=(round(lon, 7), round(lat, 7)))

    @property
    def lon(self) -> float:
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        return self.coordinates[1]


ZONE_PATTERN = r"^Z[0-9][0-9]$"
Zone = Annotated[str, Field(pattern=ZONE_PATTERN, description="City zone: Z<row><col> of the city's zone grid")]


def ngsi_ref(ngsi_type: str, description: str) -> Any:
    """An ``Annotated`` string type for a reference to another NGSI-LD entity of ``ngsi_type``."""
    pattern = f"^{NGSI_PREFIX}{ngsi_type}:{_URN_LOCAL_PATTERN}$"
    return Annotated[str, Field(pattern=pattern, description=description)]


RoadSegmentRef = ngsi_ref("RoadSegment", "The road segment (SUMO edge) this is on: urn:ngsi-ld:RoadSegment:<edge id>")


def _id_pattern_schema(schema: dict[str, Any], model: type[CityEvent]) -> None:
    schema["properties"]["id"]["pattern"] = f"^{NGSI_PREFIX}{model.ngsi_type()}:{_URN_LOCAL_PATTERN}$"


@cache
def _id_prefix(model: type[CityEvent]) -> str:
    """``urn:ngsi-ld:<Type>:``, worked out once per model (its validator checks every event's id)."""
    return f"{NGSI_PREFIX}{model.ngsi_type()}:"


class CityEvent(BaseModel):
    """Base of every stream's event: an NGSI-LD entity snapshot with a tz-aware ``dateObserved``.

    Subclasses declare ``type: Literal["<NgsiType>"] = "<NgsiType>"``; ``id`` must be
    ``urn:ngsi-ld:<NgsiType>:<local id>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True,
                              json_schema_extra=_id_pattern_schema)

    id: str = Field(description="NGSI-LD entity id: urn:ngsi-ld:<Type>:<local id>")
    type: str
    dateObserved: AwareDatetime = Field(description="When the observation was made (ISO 8601 with a timezone)")

    @classmethod
    def ngsi_type(cls) -> str:
        """The NGSI type, the default of the subclass's ``type`` literal."""
        return cls.model_fields["type"].default

    @field_validator("id")
    @classmethod
    def _ngsi_ld_id(cls, value: str) -> str:
        prefix = _id_prefix(cls)
        if not value.startswith(prefix):
            raise ValueError(f"must start with {prefix!r}")
        if not _URN_LOCAL_ID.fullmatch(value[len(prefix):]):
            raise ValueError(f"the part after {prefix!r} must be a non-empty URN id (percent-encode other characters)")
        return value

    @classmethod
    def make_id(cls, local_id: str) -> str:
        return ngsi_id(cls.ngsi_type(), local_id)
