"""Helpers of the ingest and storage tests: one valid event of each stream, embedded settings, reading a topic."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import yaml

from smartcity.events import (
    AirQualityObserved, Alert, BikeHireDockingStation, CityEvent, OffStreetParking, PublicTransportVehicle,
    STREAMS, TaxiTrip, TrafficFlowObserved, WeatherObserved, city,
)
from smartcity.backends.bus import EventBus, Record
from smartcity.privacy import PSEUDONYM_KEY_SECRET
from smartcity.ingest import OUTPUT_TOPIC_VARIABLE
from smartcity.runtime.stackfile import DEAD_LETTER as DEAD_LETTER_ANNOTATION
from smartcity.settings import DEAD_LETTER_TOPIC, PROJECT_ROOT, Settings
from smartcity.storage.envelope import StoredEvent

MOMENT = datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)
SEGMENT = "urn:ngsi-ld:RoadSegment:edge-1"


def centre() -> dict:
    box = city()
    return {"type": "Point", "coordinates": [round((box.west + box.east) / 2, 6), round((box.south + box.north) / 2, 6)]}


def sample_events(moment: datetime = MOMENT, n: int = 1) -> dict[str, CityEvent]:
    """The ``n``-th sample event of each stream at ``moment``, keyed by topic (entity ids end with ``n``)."""
    at, here, zone = moment, centre(), city().zone_of(*centre()["coordinates"])
    common = {"dateObserved": at, "location": here, "zone": zone}
    return {**_the_eight(at, n, zone, common), **_from_descriptors(n, common)}


def _from_descriptors(n: int, common: dict[str, Any]) -> dict[str, CityEvent]:
    """A sample of each other stream: its descriptor's ``example`` at ``common``'s time and place."""
    def sample(model: type[CityEvent], example: dict[str, Any]) -> CityEvent:
        where = {name: value for name, value in common.items() if name in model.model_fields}
        return model.model_validate({"id": model.make_id(f"sample-{n}"), **where, **example})

    return {topic: sample(stream.model, dict(stream.example)) for topic, stream in STREAMS.items() if stream.example}


def _the_eight(at: datetime, n: int, zone: str, common: dict[str, Any]) -> dict[str, CityEvent]:
    return {
        "traffic-sensors": TrafficFlowObserved(
            id=f"urn:ngsi-ld:TrafficFlowObserved:loop-{n}", dateObservedFrom=at - timedelta(seconds=5),
            dateObservedTo=at, refRoadSegment=SEGMENT, laneId=0, intensity=3, intensityPerHour=2160.0,
            occupancy=0.2, averageVehicleSpeed=40.0, congested=False, **common),
        "public-transport": PublicTransportVehicle(
            id=f"urn:ngsi-ld:Vehicle:bus-{n}", vehicleId=f"bus-{n}", vehicleType="bus", routeId="R1", tripId="T1",
            stopId="S1", stopSequence=2, currentStatus="IN_TRANSIT_TO", delay=30, speed=20.0, heading=90.0,
            occupancyStatus="EMPTY", **common),
        "taxi-vtc": TaxiTrip(
            id=f"urn:ngsi-ld:TaxiTrip:trip-{n}", serviceType="taxi", vehicleId=f"AB-{n:03d}-CD", driverId=f"driver-{n}",
            tripStatus="onTrip", speed=30.0, heading=10.0, pickupZone=zone, dropoffZone=zone, passengerCount=1,
            distanceTravelled=120.0, fare=None, **common),
        "parking": OffStreetParking(
            id=f"urn:ngsi-ld:OffStreetParking:park-{n}", name="Central", refRoadSegment=SEGMENT, totalSpotNumber=100,
            occupiedSpotNumber=40, availableSpotNumber=60, occupancy=0.4, status="open", **common),
        "bike-share": BikeHireDockingStation(
            id=f"urn:ngsi-ld:BikeHireDockingStation:dock-{n}", name="Dock", totalSlotNumber=20, availableBikeNumber=5,
            freeSlotNumber=14, outOfServiceSlotNumber=1, isInstalled=True, isRenting=True, isReturning=True,
            status="working", dateLastReported=at, **common),
        "incidents": Alert(
            id=f"urn:ngsi-ld:Alert:incident-{n}", category="traffic", subCategory="carAccident", severity="high",
            status="active", description="Two cars collided", refRoadSegment=SEGMENT, laneId=None, dateIssued=at,
            validFrom=at, validTo=None, alertSource="police", **common),
        "weather": WeatherObserved(
            id=f"urn:ngsi-ld:WeatherObserved:station-{n}", name="Roof", temperature=12.5, relativeHumidity=0.6,
            atmosphericPressure=1013.0, precipitation=0.0, windSpeed=3.0, windDirection=180.0, weatherType="cloudy",
            **common),
        "air-quality": AirQualityObserved(
            id=f"urn:ngsi-ld:AirQualityObserved:station-{n}", name="Kerb", no2=20.0, pm10=15.0, pm25=8.0, o3=40.0,
            co=0.3, airQualityIndex=25, airQualityLevel="low", **common),
    }


def stored(stream: str, event: CityEvent, event_id: str | None = None) -> StoredEvent:
    return StoredEvent(stream, event_id or f"{stream}/{event.id}/{event.dateObserved.isoformat()}", "/tests", event)


def sample_stored_events(moment: datetime = MOMENT, n: int = 1) -> list[StoredEvent]:
    return [stored(stream, event) for stream, event in sample_events(moment, n).items()]



def embedded_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings whose every backend is embedded under ``folder``, with a pseudonym key in its secrets folder."""
    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / PSEUDONYM_KEY_SECRET).write_text(uuid.uuid4().hex)
    values: dict[str, Any] = {
        "bus_url": f"file://{folder}/bus",
        "cache_url": f"memory://{uuid.uuid4().hex}",
        "database_url": f"sqlite:///{folder}/smartcity.db",
        "documents_url": f"embedded:///{folder}/documents.db",
        "objects_url": f"file://{folder}/objects",
        "secrets_dir": secrets,
        "topic_partitions": 2,
    }
    return Settings(**{**values, **overrides})


def drain(bus: EventBus, topics: str | list[str], expected: int | None = None, timeout_s: float = 60.0) -> list[Record]:
    """The records of topics, read by a fresh consumer group: until ``expected`` came (Kafka needs a moment to
    assign partitions to a new group), or, with no ``expected``, until a poll brings nothing (the file log)."""
    topics = [topics] if isinstance(topics, str) else topics
    consumer = bus.consumer(f"drain-{uuid.uuid4().hex}", topics, from_beginning=True)
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_s=0.2, max_records=10_000)
            records += batch
            if (expected is None and not batch) or (expected is not None and len(records) >= expected):
                break
    finally:
        consumer.close()
    return records


def prefixed_stack(folder: Path, prefix: str, names: list[str]) -> Path:
    """The project's stack.yml with only the functions named, on topics of their own: ``<prefix><topic>``.

    Ingest functions publish to the prefixed topic of their stream (``OUTPUT_TOPIC``); triggered functions read
    the prefixed topics and dead-letter to ``<prefix>dead-letter``. Tests on a shared Kafka touch nothing else.
    """
    stack = yaml.safe_load((PROJECT_ROOT / "stack.yml").read_text())
    functions = {}
    for name in names:
        entry = stack["functions"][name]
        entry["handler"] = str((PROJECT_ROOT / entry["handler"]).resolve())
        annotations = entry.setdefault("annotations", {})
        if "topic" in annotations:
            annotations["topic"] = ",".join(prefix + topic for topic in annotations["topic"].split(","))
            # a function's own dead-letter topic (dead-letter-archive's) prefixed too
            annotations[DEAD_LETTER_ANNOTATION] = prefix + annotations.get(DEAD_LETTER_ANNOTATION, DEAD_LETTER_TOPIC)
        if name.startswith("ingest-"):
            entry.setdefault("environment", {})[OUTPUT_TOPIC_VARIABLE] = prefix + name.removeprefix("ingest-")
        functions[name] = entry
    path = folder / "stack.yml"
    path.write_text(yaml.safe_dump({**stack, "functions": functions}))
    return path


def real_settings(real_stack: dict[str, str], unique: str, **overrides: Any) -> Settings:
    """Settings of the real local services, with a database, a document database and a bucket of the test's own."""
    env = {name.removeprefix("SMARTCITY_").lower(): value for name, value in real_stack.items()}
    base = Settings(**env)
    admin = psycopg.connect(base.database_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "t_{unique}"')
    admin.close()
    database_url = base.database_url.rsplit("/", 1)[0] + f"/t_{unique}"
    documents_url = base.documents_url.rsplit("/", 1)[0] + f"/t_{unique}"
    objects_url = base.objects_url.rsplit("/", 1)[0] + f"/t-{unique}"
    return Settings(**{**env, "database_url": database_url, "documents_url": documents_url, "objects_url": objects_url,
                       **overrides})


def real_settings_of_own(real_stack: dict[str, str], folder: Path, redis_db: int, **overrides: Any) -> Settings:
    """:func:`real_settings` with a copy of the stack's secrets under ``folder`` holding a pseudonym key of the
    test's own, and the cache in Redis database ``redis_db`` (the test's own: it may empty it)."""
    secrets = folder / "secrets"
    shutil.copytree(real_stack["SMARTCITY_SECRETS_DIR"], secrets)
    (secrets / PSEUDONYM_KEY_SECRET).write_text(uuid.uuid4().hex)
    cache_url = real_stack["SMARTCITY_CACHE_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
    return real_settings({**real_stack, "SMARTCITY_SECRETS_DIR": str(secrets)}, uuid.uuid4().hex[:10],
                         cache_url=cache_url, **overrides)


def drop_database(admin_url: str, name: str, timeout_s: float = 60.0) -> None:
    """``DROP DATABASE name WITH (FORCE)`` as the stack's role, which is not a superuser: FORCE may not end an
    autovacuum worker busy in that database (PostgreSQL answers "must be a member of the role whose process is being
    terminated"), so the drop is tried again until the worker is done, within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_url, autocommit=True) as admin:
        while True:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def drop_real_stores(settings: Settings) -> None:
    """Remove what :func:`real_settings` made: the database, the document database, the bucket's objects."""
    from smartcity.backends.documents import open_documents
    from smartcity.backends.objects import open_objects

    base, database = settings.database_url.rsplit("/", 1)
    drop_database(base + "/postgres", database)
    documents = open_documents(settings.documents_url, settings=settings)
    documents.client.drop_database(documents.database.name)
    documents.close()
    objects = open_objects(settings.objects_url, settings=settings)
    for key in objects.list():
        objects.delete(key)
    objects.close()


def fill_stores(db, documents) -> None:
    """Migrated tables with the reference data and two rounds of sample events, in the database and documents."""
    from smartcity.storage.documents import DocumentWriter
    from smartcity.storage.migrate import migrate
    from smartcity.storage.reference import load_reference
    from smartcity.storage.timeseries import TimeSeriesWriter

    migrate(db)
    load_reference(db)
    events = sample_stored_events() + sample_stored_events(n=2)
    TimeSeriesWriter(db).write(events)
    DocumentWriter(documents).write(events)


def everything_stored(db, documents) -> tuple[dict, dict]:
    """Every row of every table and every stored document, in a fixed order: equal before a backup and after
    its restore."""
    from smartcity.storage.backup import table_counts
    from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS

    rows = {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in table_counts(db)}
    return rows, {name: documents.find(name, sort=[("_id", 1)]) for name in (DEVICE_PAYLOADS, INCIDENTS)}
