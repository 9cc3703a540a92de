"""Issue 16, must show: a known raw vehicle id and driver id sent through ingest appear afterwards in no store,
topic, archive, backup or log line.

Taxi readings carrying known raw ids (two valid, one refused) go through ``ingest-taxi-vtc`` behind the real
gateway, on embedded backends under the test's folder (file bus, SQLite, embedded documents, local object folder,
an in-process cache, encryption at rest on); every function of ``stack.yml`` triggered by ``taxi-vtc`` or the
dead-letter topic is fed the records as its trigger feeds them (store-timeseries, store-latest, store-documents,
archive-raw, dead-letter-archive); a backup is taken. Then every byte of every file under the folder, every key,
value and index of the cache and every captured log line (all loggers at DEBUG, and stdout/stderr) are scanned for
the raw ids, in their text and JSON-escaped forms. A control value, the trip's entity id, is stored in plaintext:
the same scan must find it (in the topic's files and the database), so a scan that reads nothing cannot pass.
The same on the real servers: tests/security/test_raw_ids_real.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.events import STREAMS, Location, personal_fields
from smartcity.privacy import PSEUDONYM_PREFIX, Pseudonymizer
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC
from smartcity.storage.backup import Backups
from smartcity.storage.encryption import ensure_keyring
from tests.storage_samples import drain, sample_events
from tests.security.raw_id_scan import CONTROL, RAW_DRIVER, RAW_VEHICLE, STREAM, scan, send_readings, triggered_functions
from tests.stream_functions import STACK_FILE, ingest_function

TOPICS = {STREAM, DEAD_LETTER_TOPIC}


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def cache_bytes(cache_url: str) -> bytes:
    """Every key, value, index name and index member of the in-process cache (its whole store, read directly)."""
    store = open_cache(cache_url)._store
    parts = [key.encode() + b"=" + value for key, (value, _) in store.entries.items()]
    parts += [name.encode() + b":" + "\n".join(members).encode() for name, members in store.indexes.items()]
    return b"\n".join(parts)


def send_readings_through_ingest(folder: Path):
    """The readings of :func:`send_readings` through ingest-taxi-vtc; the settings it ran on."""
    with ingest_function(folder, STREAM) as ingest:
        ensure_keyring(ingest.settings)
        send_readings(ingest.post)
        return ingest.settings


def run_triggered_functions(settings) -> dict[str, tuple[int, int]]:
    bus = open_bus(settings.bus_url)
    try:
        outcomes = {}
        for function in load_stack(STACK_FILE, settings, triggered_functions(TOPICS)):
            records = drain(bus, [topic for topic in function.spec.topics if topic in TOPICS])
            outcome = FunctionTrigger(function).process(records)
            outcomes[function.name] = (outcome.handled, outcome.dead_lettered)
        return outcomes
    finally:
        bus.close()


def take_backup(settings, folder: Path) -> None:
    db, documents = open_database(settings.database_url), open_documents(settings.documents_url)
    try:
        Backups(open_objects(f"file://{folder}/backups"), settings=settings).create(db, settings.database_url, documents)
    finally:
        db.close()
        documents.close()


def test_raw_ids_sent_through_ingest_appear_in_no_store_topic_archive_backup_or_log(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    settings = send_readings_through_ingest(tmp_path)
    outcomes = run_triggered_functions(settings)
    assert {"store-timeseries", "store-latest", "store-documents", "archive-raw"} <= set(outcomes)
    assert all(outcomes[name][0] == 2 for name in ("store-timeseries", "store-documents", "archive-raw")), outcomes
    take_backup(settings, tmp_path)
    captured = capfd.readouterr()
    everything = {**files_under(tmp_path), "cache": cache_bytes(settings.cache_url), "log records": caplog.text.encode(),
                  "stdout": captured.out.encode(), "stderr": captured.err.encode()}
    assert any(name.startswith("objects/raw/taxi-vtc/") for name in everything)  # the archive was written
    assert any(name.startswith("backups/backups/") for name in everything)  # ... and the backup

    assert scan(everything, RAW_VEHICLE) == []
    assert scan(everything, RAW_DRIVER) == []
    found = scan(everything, CONTROL)  # the control: a value stored in plaintext is found by the same scan
    assert any(name.startswith("bus/") for name in found) and "smartcity.db" in " ".join(found), found


def test_no_stored_field_of_any_stream_keeps_a_personal_identifier_in_plaintext():
    """Why no database column is encrypted (docs/security.md): every personal text field of every stream's model,
    the taxi's ids among them, leaves ingest as a pseudonym; a personal position or coordinate as a coarser one."""
    pseudonymizer = Pseudonymizer(b"test-key", gps_precision_decimals=3)
    protected = {}
    for topic, event in sample_events().items():
        after = pseudonymizer.apply(event)
        for name in personal_fields(STREAMS[topic].model):
            value, kept = getattr(event, name), getattr(after, name)
            if isinstance(value, str) and name == "id":  # an entity id stays one of its type, its local id the pseudonym
                prefix = f"urn:ngsi-ld:{STREAMS[topic].model.ngsi_type()}:"
                assert kept == prefix + pseudonymizer.pseudonym(value.removeprefix(prefix)), (topic, name)
                protected[f"{topic}.{name}"] = kept
            elif isinstance(value, str):
                assert kept == pseudonymizer.pseudonym(value) and kept.startswith(PSEUDONYM_PREFIX), (topic, name)
                protected[f"{topic}.{name}"] = kept
            else:  # a position or a coordinate: coarsened (tests/unit/test_privacy.py)
                assert value is None or isinstance(value, (Location, float)), (topic, name, type(value))
    assert {"taxi-vtc.vehicleId", "taxi-vtc.driverId"} <= set(protected)
