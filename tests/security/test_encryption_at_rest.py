"""Encryption at rest (smartcity/storage/encryption.py): raw archives, backups and model artifacts hold no plaintext
of a known value in their stored bytes, read back as written; rotation; a missing or removed key is a clear error."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.registry import Registry
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.cli import app
from smartcity.errors import ConfigurationError
from smartcity.storage.archive import RawArchive
from smartcity.storage.backup import Backups
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.encryption import (
    EncryptionError, at_rest, ensure_keyring, header_of, load_keyring, rotate, save_keyring,
)
from smartcity.storage.migrate import migrate
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.storage_samples import embedded_settings, sample_stored_events

MARKER = "marker-7f3c1a-plaintext"


def stored_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the local object store), by path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def holding(folder: Path, text: str) -> list[str]:
    return [name for name, data in stored_bytes(folder).items() if text.encode() in data]


@pytest.fixture
def settings(tmp_path):
    settings = embedded_settings(tmp_path)
    ensure_keyring(settings)
    return settings


def marked_events():
    """The sample events, the taxi trip's driver (a pseudonym in real use) being the marker."""
    return [replace(e, event=e.event.model_copy(update={"driverId": MARKER})) if e.stream == "taxi-vtc" else e
            for e in sample_stored_events()]


class MarkerModel:
    """The least a registry stores of a model: its files, name and parameters."""

    name = "marker-model"

    def to_files(self) -> dict[str, bytes]:
        return {"weights.bin": MARKER.encode() * 3}

    def params(self) -> dict:
        return {"marker": MARKER}


def test_archives_are_encrypted_and_read_back(settings, tmp_path):
    objects = open_objects(settings.objects_url)
    archive = RawArchive(objects, open_cache(settings.cache_url), settings)
    keys = archive.write(marked_events())
    assert keys and holding(tmp_path / "objects", MARKER) == []
    assert all(objects.get(key).startswith(b"SCENC1") for key in keys)
    assert MARKER in archive.read("taxi-vtc").to_pylist()[0]["data"]
    # control: the same scan finds the marker when encryption is off
    plain = embedded_settings(tmp_path / "plain", encrypt_at_rest="off")
    RawArchive(open_objects(plain.objects_url), open_cache(plain.cache_url), plain).write(marked_events())
    assert holding(tmp_path / "plain" / "objects", MARKER)


def test_backups_are_encrypted_and_restore(settings, tmp_path):
    url = f"sqlite:///{tmp_path}/live.db"
    db, documents = open_database(url), open_documents(f"embedded:///{tmp_path}/live-documents.db")
    migrate(db)
    events = marked_events()
    TimeSeriesWriter(db).write(events)
    DocumentWriter(documents).write(events)
    backups = Backups(open_objects(f"file://{tmp_path}/backups"), settings=settings)
    backup = backups.create(db, url, documents)
    assert [name for name in holding(tmp_path, MARKER) if name.startswith("live")]  # control: the live stores have it
    assert holding(tmp_path / "backups", MARKER) == [] and holding(tmp_path / "backups", "device_payloads") == []
    fresh_url = f"sqlite:///{tmp_path}/fresh.db"
    fresh = open_documents(f"embedded:///{tmp_path}/fresh-documents.db")
    backups.restore(backup.id, open_database(fresh_url), fresh_url, fresh)
    assert MARKER in str(fresh.find("device_payloads"))


def test_model_artifacts_cards_and_pointers_are_encrypted(settings, tmp_path):
    registry = Registry(open_objects(settings.objects_url), settings=settings)
    version = registry.save("segment-speed", MarkerModel(), {"note": MARKER})
    registry.promote("segment-speed", version)
    assert holding(tmp_path / "objects", MARKER) == [] and holding(tmp_path / "objects", version) == []
    assert registry.files("segment-speed", version) == {"weights.bin": MARKER.encode() * 3}
    assert registry.card("segment-speed", version)["note"] == MARKER
    assert registry.promoted_version("segment-speed") == version


def test_rotation_rewraps_and_a_removed_key_is_a_clear_error(settings, tmp_path):
    raw = open_objects(settings.objects_url)
    old = load_keyring(settings)
    at_rest(raw, settings).put("raw/a", b"first")
    save_keyring(settings, old.with_new_key())
    new = load_keyring(settings)
    store = at_rest(raw, settings)
    store.put("raw/b", b"second")
    assert header_of(raw.get("raw/a"))[0]["kid"] == old.current != new.current == header_of(raw.get("raw/b"))[0]["kid"]
    assert store.get("raw/a") == b"first"  # an old object stays readable once a key is added
    raw.put("raw/legacy", b"written before encryption")
    assert rotate(raw, new, ["raw/"]) == {"rewrapped": 1, "encrypted": 1, "current": 1}
    assert {header_of(raw.get(key))[0]["kid"] for key in raw.list("raw/")} == {new.current}
    save_keyring(settings, new.without(old.current))
    assert [at_rest(raw, settings).get(key) for key in raw.list("raw/")] == [b"first", b"second", b"written before encryption"]

    # an object left wrapped with the removed key says which key it needs
    save_keyring(settings, new)
    at_rest(raw, settings).put("models/x", b"secret")
    save_keyring(settings, new.with_new_key().without(new.current))
    with pytest.raises(EncryptionError, match=f"object models/x is encrypted with key '{new.current}', which is not in"):
        at_rest(raw, settings).get("models/x")


def test_missing_keyring_wrong_key_and_tampering_are_clear_errors(settings, tmp_path):
    raw = open_objects(settings.objects_url)
    at_rest(raw, settings).put("raw/a", b"payload")
    kid = load_keyring(settings).current
    other = embedded_settings(tmp_path / "other")
    with pytest.raises(EncryptionError, match=f"encrypted with key '{kid}', but there is no keyring"):
        at_rest(raw, other).get("raw/a")
    with pytest.raises(ConfigurationError, match="SMARTCITY_ENCRYPT_AT_REST"):
        at_rest(raw, other.model_copy(update={"encrypt_at_rest": "on"}))
    save_keyring(other, type(load_keyring(settings))({kid: b"\0" * 32}))  # same id, another key
    with pytest.raises(EncryptionError, match="does not unwrap its data key"):
        at_rest(raw, other).get("raw/a")
    data = bytearray(raw.get("raw/a"))
    data[-1] ^= 1
    raw.put("raw/a", bytes(data))
    with pytest.raises(EncryptionError, match="does not authenticate"):
        at_rest(raw, settings).get("raw/a")


def test_keys_command_adds_lists_rotates_and_removes(tmp_path, monkeypatch):
    settings = embedded_settings(tmp_path, backup_url=f"file://{tmp_path}/backups")
    for name, value in {"SMARTCITY_SECRETS_DIR": settings.secrets_dir, "SMARTCITY_OBJECTS_URL": settings.objects_url,
                        "SMARTCITY_BACKUP_URL": settings.backup_url}.items():
        monkeypatch.setenv(name, str(value))
    from smartcity.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["keys", "list"]).exit_code == 2
        assert runner.invoke(app, ["keys", "add"]).exit_code == 0
        first = load_keyring(settings).current
        at_rest(open_objects(settings.objects_url), settings).put("raw/a", MARKER.encode())
        open_objects(settings.backup_url).put("backups/x/manifest.json", MARKER.encode())
        assert runner.invoke(app, ["keys", "add"]).exit_code == 0
        listed = runner.invoke(app, ["keys", "list"]).output.split()
        assert listed[0] == first and listed[-1] == "(encrypts)" and len(listed) == 3
        rotated = runner.invoke(app, ["keys", "rotate"])
        assert rotated.exit_code == 0 and "1 re-wrapped" in rotated.output and "1 encrypted" in rotated.output
        assert runner.invoke(app, ["keys", "remove", first]).exit_code == 0
        assert at_rest(open_objects(settings.objects_url), settings).get("raw/a") == MARKER.encode()
        assert holding(tmp_path / "backups", MARKER) == []
        refused = runner.invoke(app, ["keys", "remove", "nope"])
        assert refused.exit_code == 2 and "no key 'nope'" in refused.output
    finally:
        get_settings.cache_clear()
