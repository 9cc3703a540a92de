"""Bad backend configuration fails fast and names the setting: unknown scheme, unreachable host, missing secret."""

from __future__ import annotations

import socket

import pytest

from smartcity.backends._url import CONNECT_TIMEOUT_S
from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

OPENERS = {
    "SMARTCITY_BUS_URL": (open_bus, ["file://", "kafka://"]),
    "SMARTCITY_DATABASE_URL": (open_database, ["postgresql://", "sqlite://"]),
    "SMARTCITY_DOCUMENTS_URL": (open_documents, ["embedded://", "mongodb://"]),
    "SMARTCITY_CACHE_URL": (open_cache, ["memory://", "redis://"]),
    "SMARTCITY_OBJECTS_URL": (open_objects, ["file://", "s3://"]),
}
# Not a speed assertion: a guard that ends the test (failed) if an opener hangs instead of giving up.
HANG_GUARD_S = 120


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def secrets(tmp_path) -> Settings:
    (tmp_path / "s3-access-key").write_text("access")
    (tmp_path / "s3-secret-key").write_text("secret")
    return Settings(secrets_dir=tmp_path)


@pytest.mark.parametrize("setting", OPENERS)
def test_an_unknown_scheme_names_the_setting_and_lists_the_known_ones(setting):
    opener, known = OPENERS[setting]
    with pytest.raises(ConfigurationError) as raised:
        opener("ftp://somewhere/x")
    assert raised.value.setting == setting
    assert "unknown scheme 'ftp'" in str(raised.value)
    assert all(scheme in str(raised.value) for scheme in known)


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("SMARTCITY_BUS_URL", "kafka://127.0.0.1:{port}"),
        ("SMARTCITY_DATABASE_URL", "postgresql://smartcity@127.0.0.1:{port}/smartcity"),
        ("SMARTCITY_DOCUMENTS_URL", "mongodb://127.0.0.1:{port}/smartcity"),
        ("SMARTCITY_CACHE_URL", "redis://127.0.0.1:{port}/0"),
        ("SMARTCITY_OBJECTS_URL", "s3://127.0.0.1:{port}/smartcity"),
    ],
)
@pytest.mark.timeout(HANG_GUARD_S)
def test_an_unreachable_host_fails_fast_naming_the_setting(setting, url, closed_port, secrets):
    """The opener gives up (it does not retry for ever) with an error naming the setting, the server, and the
    bound it waited within: the one ``CONNECT_TIMEOUT_S`` every backend hands its client."""
    opener, _ = OPENERS[setting]
    with pytest.raises(ConfigurationError) as raised:
        opener(url.format(port=closed_port), settings=secrets)
    assert raised.value.setting == setting
    assert "cannot reach" in str(raised.value) and str(closed_port) in str(raised.value)
    assert f"within {CONNECT_TIMEOUT_S:g} s" in str(raised.value)


def test_a_missing_secret_file_is_named(tmp_path, closed_port):
    with pytest.raises(ConfigurationError) as raised:
        open_objects(f"s3://127.0.0.1:{closed_port}/smartcity", settings=Settings(secrets_dir=tmp_path))
    assert raised.value.setting == "secret s3-access-key"
    assert str(tmp_path / "s3-access-key") in str(raised.value)


@pytest.mark.parametrize(
    ("opener", "url", "reason"),
    [
        (open_bus, "kafka://nohostport", "expected kafka://host:port"),
        (open_bus, "file://relative/folder", "absolute path"),
        (open_bus, "file:///tmp/x?batch=0", "batch"),
        (open_database, "sqlite://", "has no path"),
        (open_documents, "mongodb://127.0.0.1:1", "names no database"),
        (open_objects, "s3://127.0.0.1:1/a/b", "one bucket name"),
        (open_objects, "s3://127.0.0.1:1/a?secure=maybe", "secure"),
    ],
)
def test_malformed_urls_say_what_is_expected(opener, url, reason, secrets):
    with pytest.raises(ConfigurationError, match=reason):
        opener(url, settings=secrets)
