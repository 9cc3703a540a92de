"""The stream descriptors: the platform's eight found in smartcity/streams/, each present everywhere stack.yml must
name it (its ingest function and folder, the store functions' topics), with its committed JSON Schema; a user
folder's descriptor is added after them; a bad descriptor is refused naming its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.errors import ConfigurationError
from smartcity.events import STREAMS, TOPICS
from smartcity.events.weather import WeatherObserved
from smartcity.runtime.stackfile import read_stack
from smartcity.runtime.stream_entries import EVERY_STREAM
from smartcity.settings import PROJECT_ROOT
from smartcity.storage.tables import STREAM_TABLES
from smartcity.streams import Stream
from smartcity.streams._registry import discover

SCHEMAS = PROJECT_ROOT / "smartcity" / "events" / "schemas"


def test_the_package_holds_the_eight_streams_first_in_the_order_of_topics():
    streams, from_folder = discover(None)
    assert tuple(streams)[:len(TOPICS)] == TOPICS and from_folder == set()  # then any added by new-stream
    assert tuple(STREAMS) == tuple(streams)  # no SMARTCITY_STREAMS_DIR in the tests' environment


def test_every_stream_has_its_ingest_function_and_the_store_functions_read_it():
    stack, specs = read_stack(PROJECT_ROOT / "stack.yml")
    by_name = {spec.name: spec for spec in specs}
    for topic in STREAMS:
        ingest = by_name[f"ingest-{topic}"]
        assert (ingest.handler_dir / "handler.py").is_file() and (ingest.handler_dir / "handler_test.py").is_file()
        assert (SCHEMAS / STREAMS[topic].schema_file).is_file()
    every_stream = [spec for spec in specs if spec.entry.annotations.get(EVERY_STREAM) == "true"]
    assert {spec.name for spec in every_stream} == {"store-timeseries", "store-latest", "store-documents",
                                                    "archive-raw"}
    assert all(set(STREAMS) <= set(spec.topics) for spec in every_stream)


def test_tables_and_latest_fields_come_from_the_descriptors():
    assert {topic: table.table for topic, table in STREAM_TABLES.items()} == {
        topic: stream.table for topic, stream in STREAMS.items()}
    assert STREAMS["taxi-vtc"].latest_field == "vehicleId" and STREAMS["weather"].latest_field == "id"
    assert Stream("wind-gusts", "city.wind.v1", WeatherObserved, "id", "x").table == "wind_gusts"


def test_a_folder_stream_comes_after_the_package_streams(tmp_path: Path):
    (tmp_path / "gusts.py").write_text(
        "from typing import Literal\nfrom smartcity.events.common import CityEvent\nfrom smartcity.streams import Stream\n"
        "class Gust(CityEvent):\n    type: Literal['WindGust'] = 'WindGust'\n    speed: float\n"
        "STREAM = Stream('wind-gusts', 'city.wind.gust.v1', Gust, 'id', 'Gusts', table='gusts')\n")
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('not a descriptor: never imported')\n")
    streams, from_folder = discover(tmp_path)
    assert list(streams)[-1] == "wind-gusts" and from_folder == {"wind-gusts"}


@pytest.mark.parametrize(("text", "reason"), [
    ("x = 1\n", "defines no STREAM = Stream(...)"),
    ("import nowhere_to_be_found\n", "ModuleNotFoundError"),
    ("from smartcity.events.weather import WeatherObserved\nfrom smartcity.streams import Stream\n"
     "STREAM = Stream('Bad Name', 'city.x.v1', WeatherObserved, 'id', 'x')\n", "lowercase letters and digits"),
    ("from smartcity.events.weather import WeatherObserved\nfrom smartcity.streams import Stream\n"
     "STREAM = Stream('gusts', 'city.x.v1', WeatherObserved, 'stationId', 'x')\n", "has no field 'stationId'"),
    ("from smartcity.events.weather import WeatherObserved\nfrom smartcity.streams import Stream\n"
     "STREAM = Stream('gusts', 'city.x.v1', WeatherObserved, 'id', 'x')\n", "NGSI type 'WeatherObserved' is declared twice"),
])
def test_a_bad_descriptor_is_refused_naming_its_file(tmp_path: Path, text: str, reason: str):
    (tmp_path / "bad.py").write_text(text)
    with pytest.raises(ConfigurationError) as refused:
        discover(tmp_path)
    assert refused.value.setting == "SMARTCITY_STREAMS_DIR" and reason in str(refused.value)
    assert "bad.py" in str(refused.value)


def test_a_streams_dir_that_is_not_a_folder_is_refused(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="is not a folder"):
        discover(tmp_path / "absent")
