"""What ``smartcity new-stream`` writes: a stream's descriptor (its model inline), its ingest function and test.

Fields are ``name:type[:unit]`` (``soundLevel:float:dB(A)``): ``float`` and ``int`` become measures (with the
unit in the schema), ``str`` a non-empty text, ``bool`` a flag. Every model also has ``location`` and ``zone``
(the zone comes from the location at ingest), besides the ``id``, ``type`` and ``dateObserved`` of any event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD_NAME = re.compile(r"[a-z][A-Za-z0-9]*")
TYPES = {"float": 1.5, "int": 1, "str": "sample", "bool": True}
RESERVED = {"id", "type", "dateObserved", "location", "zone"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    unit: str | None

    def declaration(self) -> str:
        if self.type in ("float", "int") and self.unit:
            return f'    {self.name}: {self.type} = measure("{self.name}", "{self.unit}")'
        if self.type == "str":
            return f'    {self.name}: str = Field(min_length=1, description="{self.name}")'
        return f'    {self.name}: {self.type} = Field(description="{self.name}")'


def parse_fields(text: str) -> list[FieldSpec]:
    """``name:type[:unit],...`` as field specs; ValueError saying which one is wrong."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, rest = item.partition(":")
        kind, _, unit = rest.partition(":")
        if not FIELD_NAME.fullmatch(name) or name in RESERVED:
            raise ValueError(f"{item!r}: a field name is lowerCamelCase and not one of {sorted(RESERVED)}")
        if kind not in TYPES:
            raise ValueError(f"{item!r}: the type is one of {', '.join(TYPES)}")
        if unit and kind not in ("float", "int"):
            raise ValueError(f"{item!r}: only a float or int field has a unit")
        specs.append(FieldSpec(name, kind, unit or None))
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("a field is named twice")
    if not specs:
        raise ValueError("no field: give at least one name:type[:unit]")
    return specs


def model_name(topic: str) -> str:
    return "".join(word.capitalize() for word in topic.split("-")) + "Observed"


def module_name(topic: str) -> str:
    return topic.replace("-", "_")


def descriptor_text(topic: str, fields: list[FieldSpec], description: str, api_group: str | None) -> str:
    model = model_name(topic)
    example = "{" + ", ".join(f'"{f.name}": {TYPES[f.type]!r}' for f in fields).replace("'", '"') + "}"
    group = f'\n    api_group="{api_group}",' if api_group else ""
    return f'''"""The {topic} stream: {description}.

Made by `smartcity new-stream`; see docs/adding-a-sensor-type.md. Give the measures their bounds (``ge=``, ``le=``).
"""

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure
from smartcity.streams import Stream


class {model}(CityEvent):
    """One reading of the {topic} stream."""

    type: Literal["{model}"] = "{model}"
    location: Location
    zone: Zone
{chr(10).join(f.declaration() for f in fields)}


STREAM = Stream(
    topic="{topic}",
    ce_type="city.{topic.replace("-", "")}.observed.v1",
    model={model},
    key_field="id",
    description="{description}",{group}
    example={example},
)
'''


def handler_text(topic: str, description: str) -> str:
    return f'''"""ingest-{topic}: readings of the {topic} stream (JSON or CSV, one or a batch) onto its topic.

{description}.
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("{topic}", context)
'''


def handler_test_text(topic: str, fields: list[FieldSpec]) -> str:
    first = fields[0].name
    return f'''"""ingest-{topic} through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("{topic}")


def test_a_reading_is_published_with_its_zone(ingest):
    [data] = assert_published(ingest, ingest.post(reading("{topic}")))
    assert data["{first}"] == reading("{topic}")["{first}"] and data["zone"] == reading("{topic}")["zone"]


def test_a_reading_without_{first.lower()}_is_refused_naming_it(ingest):
    incomplete = {{k: v for k, v in reading("{topic}").items() if k != "{first}"}}
    assert_refused(ingest, [reading("{topic}"), incomplete], "{first}", accepted=1)
'''
