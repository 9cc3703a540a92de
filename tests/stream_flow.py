"""One reading of a stream through ingest, the store functions and the API, on embedded backends: run in a process
of its own (``python -m tests.stream_flow FOLDER TOPIC READING_JSON``) so that the stream descriptors it sees are
those of its environment (``SMARTCITY_STREAMS_DIR``). Prints what each step gave, as JSON, for the test to judge.

A stream with a simulator source also gets ten simulated minutes of it through the same function. The
functions are those of the project's ``stack.yml``, loaded by the real loader: the ingest function behind the
real gateway (with and without an ingest key), store-timeseries and store-latest fed the records of the file bus as
their trigger feeds them, and the API functions behind the gateway (with and without a viewer token).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

import smartcity

from smartcity.api.auth import Role
from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.events import STREAMS, platform_topics
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import PROJECT_ROOT
from smartcity.simulator.clock import CityClock
from smartcity.simulator.runner import publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import HttpSink
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from tests.api_samples.gateway import api_gateway
from tests.credentials import bearer, ingest_headers
from tests.storage_samples import drain, embedded_settings

STACK_FILE = PROJECT_ROOT / "stack.yml"
STORE_FUNCTIONS = ["store-timeseries", "store-latest"]
START = datetime(2026, 3, 2, 7, 55, tzinfo=ZoneInfo("Europe/Berlin"))


def flow(folder: Path, topic: str, reading: dict) -> dict:
    stream = STREAMS[topic]
    settings = embedded_settings(folder)
    db = open_database(settings.database_url)
    migrate(db)
    load_reference(db)
    result: dict = {"streams": list(STREAMS), "platform_topics": list(platform_topics()),
                    "smartcity": smartcity.__file__}
    ingest = f"/function/ingest-{topic}"
    with TestClient(build_gateway(STACK_FILE, settings, [f"ingest-{topic}"])) as client:
        result["anonymous"] = client.post(ingest, json=reading).status_code
        headers = ingest_headers(settings, [topic])
        accepted = client.post(ingest, json=reading, headers=headers)
        result["accepted"] = [accepted.status_code, accepted.json()]
        refused = client.post(ingest, json={**reading, "id": "other", "soundLevel": 500}, headers=headers)
        result["refused"] = [refused.status_code, refused.json()]
        result["simulated"] = simulate(client, topic, headers["x-api-key"]) if stream.source else 0
    bus = open_bus(settings.bus_url)
    records = drain(bus, topic)
    bus.close()
    result["records"] = len(records)
    result["stores"] = {}
    for function in load_stack(STACK_FILE, settings, STORE_FUNCTIONS):
        outcome = FunctionTrigger(function).process(records)
        result["stores"][function.name] = [function.spec.topics.count(topic), outcome.handled, outcome.dead_lettered]
    result["rows"] = db.query(f"SELECT * FROM {stream.table}")
    db.close()
    path = f"/v1/{stream.api_group}/{topic}"
    with TestClient(api_gateway(settings)) as api:
        result["unauthorized"] = api.get(path).status_code
        viewer = bearer(settings, Role.viewer)
        listing = api.get(path, headers=viewer)
        result["listing"] = [listing.status_code, listing.json()]
        first = (listing.json().get("items") or [{"id": "none-listed"}])[0]["id"]
        one = api.get(f"{path}/{first}", headers=viewer)
        result["one"] = [one.status_code, one.json()]
        result["missing"] = api.get(f"{path}/nobody", headers=viewer).status_code
    return result


def simulate(client: TestClient, topic: str, api_key: str) -> int:
    """Ten minutes of the stream's simulator source, POSTed to its ingest function; the readings sent."""
    sink = HttpSink(f"http://testserver/function/ingest-{topic}", client=client, api_key=api_key)
    with CitySimulation(SimulatorOptions(start=START, seed=5, duration_s=600, streams=(topic,))) as simulation:
        report = publish(simulation.ticks(), sink, CityClock(simulation.start, 0))
    return report.by_topic.get(topic, 0)


if __name__ == "__main__":
    print(json.dumps(flow(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])), default=str))
