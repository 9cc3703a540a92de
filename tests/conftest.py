"""Test-session wiring: the real local services start once per session, only when a test needs them."""

from __future__ import annotations

import pytest


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
