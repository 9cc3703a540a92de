"""The whole simulated city: every stream's events fit the committed JSON Schemas; a seed reproduces the run."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from smartcity.cli.schemas import SCHEMAS_DIR
from smartcity.events import STREAMS, TOPICS
from smartcity.simulator.incidents import IncidentPlan
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions

START = datetime(2026, 3, 2, 7, 55, tzinfo=ZoneInfo("Europe/Berlin"))


def simulate(seed: int, minutes: float, **options) -> list[tuple[str, str]]:
    """(topic, event JSON) of every event of a run, in publishing order."""
    plans = (IncidentPlan("closure", START, minutes=3),)
    with CitySimulation(SimulatorOptions(start=START, seed=seed, duration_s=minutes * 60, incidents=plans,
                                         **options)) as simulation:
        return [(stream.topic, event.model_dump_json()) for tick in simulation.ticks()
                for stream, events in tick.events for event in events]


@pytest.fixture(scope="module")
def run():
    return simulate(seed=11, minutes=12)


def test_every_stream_publishes_events_that_fit_its_committed_json_schema(run):
    assert {topic for topic, _ in run} == set(TOPICS)
    for topic in TOPICS:
        stream = STREAMS[topic]
        validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS_DIR / stream.schema_file).read_text()))
        for _, data in (item for item in run if item[0] == topic):
            event = json.loads(data)
            validator.validate(event)
            assert stream.model.model_validate(event).model_dump_json() == data


def test_the_same_seed_gives_the_same_events_and_another_seed_others(run):
    again = simulate(seed=11, minutes=12)
    assert again == run
    other = simulate(seed=12, minutes=12)
    assert len(other) != len(run) or other != run
    taxi = [data for topic, data in run if topic == "taxi-vtc"]
    assert taxi != [data for topic, data in other if topic == "taxi-vtc"]


def test_a_chosen_subset_of_streams_is_all_that_is_published():
    events = simulate(seed=3, minutes=2, streams=("parking", "bike-share"))
    assert {topic for topic, _ in events} == {"parking", "bike-share"}


def test_pollution_follows_traffic():
    """NO2 at the traffic station is higher in the morning rush than at night, with the same weather seed."""
    def no2(hour: int) -> float:
        start = START.replace(hour=hour, minute=0)
        with CitySimulation(SimulatorOptions(start=start, seed=5, duration_s=3600, incidents_per_day=0,
                                             streams=("air-quality",))) as simulation:
            values = [e.no2 for tick in simulation.ticks() for _, events in tick.events for e in events
                      if e.name.endswith("(traffic)")]
        return sum(values[-4:]) / 4
    assert no2(8) > no2(3) + 10
