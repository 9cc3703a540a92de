"""One valid call of every function of stack.yml, and the embedded folder the functions answer it from.

The calls are what a client sends (:mod:`tests.packaging.replay` sends them): a reading POSTed to an ingest
function, a binary-mode CloudEvent to a Kafka-triggered one (what its trigger would deliver), a GET with a
viewer's token to an API function. The folder holds the embedded backends (file bus, SQLite, embedded documents,
local objects) and the secrets (pseudonym key, JWT keys); :func:`function_environment` names them the way a
function's container is configured, with ``SMARTCITY_*`` variables.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from smartcity.events import stream_for_topic
from smartcity.events.derived import TRAFFIC_WINDOWS, TrafficWindow
from smartcity.privacy import PSEUDONYM_KEY_SECRET
from smartcity.runtime.bindings import Mode, events_to_http
from smartcity.runtime.events import new_event
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import Settings
from tests.storage_samples import MOMENT, SEGMENT, centre, sample_events

SOURCE = "/tests/packaging"
# A read route of each API function that answers 200 on a migrated database holding the reference tables, the
# same answer wherever and whenever it is asked (a fixed time range where the default would be the last hour).
API_READS = {
    "api-traffic": "/v1/traffic/anomalies?from=2025-03-01T08:00:00Z&to=2025-03-01T09:00:00Z",
    "api-transport": "/v1/transport/lines",
    "api-mobility": "/v1/mobility/parking",
    "api-incidents": "/v1/incidents",
    "api-analytics": "/v1/analytics/kpis?from=2025-03-01T08:00:00Z&to=2025-03-01T09:00:00Z",
}
STORED_STREAM = "traffic-sensors"  # what the store functions and archive-raw are sent
INGEST_API_KEY = "sck_packaging-test"  # in every folder's ingest-api-keys: the in-process and image answers compare


def function_environment(folder: Path, stack_file: Path) -> dict[str, str]:
    """The ``SMARTCITY_*`` variables of functions whose backends are embedded under ``folder``."""
    return {
        "SMARTCITY_BUS_URL": f"file://{folder}/bus",
        "SMARTCITY_DATABASE_URL": f"sqlite:///{folder}/smartcity.db",
        "SMARTCITY_DOCUMENTS_URL": f"embedded:///{folder}/documents.db",
        "SMARTCITY_OBJECTS_URL": f"file://{folder}/objects",
        # a store of its own: memory:// stores are per process and name, and other tests in this process use
        # the unnamed one (an analytics answer cached by one of them would be served here)
        "SMARTCITY_CACHE_URL": f"memory://packaging{folder}",
        "SMARTCITY_SECRETS_DIR": str(folder / "secrets"),
        "SMARTCITY_STACK_FILE": str(stack_file),
        "SMARTCITY_TOPIC_PARTITIONS": "2",
    }


def settings_of(folder: Path, stack_file: Path) -> Settings:
    """The settings :func:`function_environment` gives a function, for one loaded in this process."""
    prefix = len("SMARTCITY_")
    return Settings(**{name[prefix:].lower(): value for name, value in function_environment(folder, stack_file).items()})


PSEUDONYM_KEY = "packaging-test-pseudonym-key-0123456789abcdef"


def write_secrets(folder: Path) -> Path:
    """The pseudonym key, the JWT keys and the ingest key list (holding :data:`INGEST_API_KEY`) in
    ``folder/secrets``; returns that folder."""
    from smartcity.api.auth import create_local_keys
    from smartcity.runtime.credentials import ALL_STREAMS, add_ingest_key

    secrets = folder / "secrets"
    create_local_keys(secrets)
    # one pseudonym key for every environment compared: a personal entity id (a shared bike's) is pseudonymized
    # before its event id is derived, so the answers differ with the key
    (secrets / PSEUDONYM_KEY_SECRET).write_text(PSEUDONYM_KEY)
    add_ingest_key(secrets, "packaging-test", [ALL_STREAMS], key=INGEST_API_KEY)
    return secrets


def viewer_token(folder: Path) -> str:
    """A viewer's token signed with the HS256 key of ``folder/secrets``."""
    from smartcity.api.auth import KeyRing, Role, issue_token

    return issue_token(KeyRing(Settings(secrets_dir=folder / "secrets")), "packaging-test", Role.viewer)


def _call(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"method": method, "path": path, "headers": headers, "body": base64.b64encode(body).decode()}


def _cloudevent_call(ce_type: str, data: dict[str, Any], ce_id: str, **extensions: Any) -> dict[str, Any]:
    """A POST of one binary-mode CloudEvent, as the function's Kafka trigger delivers it over HTTP."""
    _, headers, body = events_to_http([new_event(ce_type, SOURCE, data, id=ce_id, **extensions)], Mode.BINARY)
    return _call("POST", "/", headers, body)


def _window() -> dict[str, Any]:
    lon, lat = centre()["coordinates"]
    return TrafficWindow(sensor_id="urn:ngsi-ld:TrafficFlowObserved:loop-1", segment_id=SEGMENT, zone_id="Z11",
                         lane_id=0, lon=lon, lat=lat, window_start=MOMENT, window_end=MOMENT.replace(minute=35),
                         flow_per_hour=900.0, mean_speed_kmh=38.0, mean_occupancy=0.2,
                         congestion_index=0.3).model_dump(mode="json")


def sample_calls(token: str) -> dict[str, dict[str, Any]]:
    """One valid call of every function, by kind (ingest, store, dead letters, models, API)."""
    readings = {topic: event.model_dump(mode="json") for topic, event in sample_events().items()}
    stored_type = stream_for_topic(STORED_STREAM).ce_type
    ingest_headers = {"content-type": "application/json", "x-api-key": INGEST_API_KEY}
    calls = {f"ingest-{topic}": _call("POST", "/", ingest_headers, json.dumps(readings[topic]).encode())
             for topic in readings}  # every registered stream, descriptor-only ones included
    for name in ("store-timeseries", "store-latest", "store-documents", "archive-raw"):
        calls[name] = _cloudevent_call(stored_type, readings[STORED_STREAM], f"{name}-1")
    error = base64.b64encode(json.dumps({"title": "failed", "status": 500}).encode()).decode()
    calls["dead-letter-archive"] = _cloudevent_call(
        stored_type, readings[STORED_STREAM], "dead-1", knativeerrordest="http://gateway/function/store-latest",
        knativeerrorcode="500", knativeerrordata=error)
    for name in ("forecast-traffic", "detect-anomalies", "cluster-hotspots"):
        calls[name] = _cloudevent_call(TRAFFIC_WINDOWS.ce_type, _window(), f"{name}-window-1")
    for name, path in API_READS.items():
        calls[name] = _call("GET", path, {"authorization": f"Bearer {token}"}, b"")
    return calls


def stack_functions(stack_file: Path) -> list[str]:
    """The names of every function of the stack file."""
    return [spec.name for spec in read_stack(stack_file)[1]]


def write_calls(path: Path, calls: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps(calls))
    return path
