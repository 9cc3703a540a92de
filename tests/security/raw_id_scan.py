"""What the raw-id tests share (issue 16): the known raw ids and the control value, the taxi readings carrying them
sent through ``ingest-taxi-vtc``, and the byte scan that looks for every form of a value."""

from __future__ import annotations

import orjson

from smartcity.runtime.stackfile import read_stack
from tests.stream_functions import STACK_FILE, reading

RAW_VEHICLE = "RAW-VEH-4711-QX"
RAW_DRIVER = "raw-driver-0815-kq"
CONTROL = "urn:ngsi-ld:TaxiTrip:control-trip-5150"
STREAM = "taxi-vtc"


def forms(value: str) -> list[bytes]:
    """The value as text, JSON-escaped, UTF-16 (SQLite may store text so) and in upper and lower case."""
    return sorted({value.encode(), orjson.dumps(value)[1:-1], value.encode("utf-16-le"),
                   value.lower().encode(), value.upper().encode()})


def scan(files: dict[str, bytes], value: str) -> list[str]:
    """The names of the files (or captured outputs) whose bytes hold any form of ``value``."""
    return sorted(name for name, data in files.items() if any(form in data for form in forms(value)))


def triggered_functions(topics: set[str]) -> list[str]:
    """The functions of the project's stack.yml that a record of one of ``topics`` triggers."""
    _, specs = read_stack(STACK_FILE)
    return [spec.name for spec in specs if topics & set(spec.topics)]


def send_readings(post) -> None:
    """Through ``post(readings)`` (a POST to ingest-taxi-vtc): two valid readings with the raw ids (the first's
    entity id the control), accepted; one with the raw ids and a negative speed, refused."""
    valid = [reading(STREAM, id=CONTROL, vehicleId=RAW_VEHICLE, driverId=RAW_DRIVER),
             reading(STREAM, id=CONTROL + "-2", vehicleId=RAW_VEHICLE, driverId=RAW_DRIVER, speed=12.0)]
    answer = post(valid)
    assert answer.status_code == 202, answer.text
    refused = post([reading(STREAM, vehicleId=RAW_VEHICLE, driverId=RAW_DRIVER, speed=-3)])
    assert refused.status_code == 422, refused.text
