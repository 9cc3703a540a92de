"""Test databases are dropped by the stack's role, which is not a superuser: ``DROP DATABASE ... WITH (FORCE)`` may not
end a session it has no right to signal (an autovacuum worker, in the CI run that failed so), and the tests' helper
waits for that session to end instead of failing the test's teardown."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from smartcity.stack.postgres import SUPERUSER
from tests.storage_samples import drop_database

pytestmark = pytest.mark.real


def test_a_database_held_by_a_session_the_role_may_not_end_is_dropped_once_that_session_ends(real_stack):
    admin_url = real_stack["SMARTCITY_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    name = f"t_drop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    conninfo = psycopg.conninfo.conninfo_to_dict(admin_url) | {"dbname": name, "user": SUPERUSER}
    holder = psycopg.connect(**conninfo, autocommit=True)
    try:
        with psycopg.connect(admin_url, autocommit=True) as admin, pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # what the teardown did before
        timer = threading.Timer(1.5, holder.close)
        timer.start()
        drop_database(admin_url, name, timeout_s=30)
        timer.join()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
    finally:
        holder.close()
        drop_database(admin_url, name, timeout_s=30)
