"""Test-session wiring: the real local services start once per session, only when a test needs them."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def root_logging_left_as_found():
    """Every test leaves the root logger's handlers and level as it found them. Code that configures logging (a
    CLI command run in-process: ``logship.configure`` puts a JSON handler on the stderr of that moment, which
    CliRunner closes after) would otherwise leave a handler on a closed stream, and a late log line (py4j's at
    exit) ends the session with '--- Logging error ---'."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def real_stack():
    """The real local services (Kafka, PostgreSQL, FerretDB, Redis, S3, Prometheus), started once per session.

    Returns the mapping of ``SMARTCITY_*`` settings that point at them. Services this fixture started are
    stopped at the end of the session; ones that were already running are left running.
    """
    from smartcity import stack

    started = stack.up()
    yield stack.settings_env()
    stack.down(only=started)


@pytest.fixture
def private_stack(monkeypatch):
    """Settings for a private stack: its own folder (under the real one, so the postgres user can reach it) and
    free ports for Redis, PostgreSQL and its replica. Whatever it started is stopped and its folder removed
    afterwards."""
    import shutil
    import uuid

    from smartcity import stack
    from smartcity.settings import get_settings
    from tests.ports import free_port

    folder = get_settings().stack_dir / "test-runs" / uuid.uuid4().hex[:8]
    monkeypatch.setenv("SMARTCITY_STACK_DIR", str(folder))
    for setting in ("SMARTCITY_REDIS_PORT", "SMARTCITY_POSTGRES_PORT", "SMARTCITY_POSTGRES_REPLICA_PORT"):
        monkeypatch.setenv(setting, str(free_port()))
    get_settings.cache_clear()
    try:
        yield folder
    finally:
        stack.down(["redis", "postgres", "postgres-replica"])
        get_settings.cache_clear()
        monkeypatch.undo()
        get_settings.cache_clear()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def migrated_sqlite(tmp_path):
    """An embedded SQLite database with every table migrated, closed afterwards."""
    from smartcity.backends.database import open_database
    from smartcity.storage.migrate import migrate

    database = open_database(f"sqlite:///{tmp_path / 'test.db'}")
    migrate(database)
    yield database
    database.close()
