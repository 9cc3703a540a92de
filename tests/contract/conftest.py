"""Contract-suite wiring: each backend kind's suite runs against its embedded implementation and its real server.

A backend fixture is parametrized with ``embedded`` (a temporary folder or in-process store) and ``real`` (the
server that ``real_stack`` started); ``pytest tests/contract -k embedded`` runs the suites with no server at all.
"""

from __future__ import annotations

import uuid

import pytest

from smartcity.settings import Settings

IMPLEMENTATIONS = ["embedded", pytest.param("real", marks=pytest.mark.real)]


def real_setting(request: pytest.FixtureRequest, name: str) -> str:
    """One ``SMARTCITY_*`` setting of the real local services (starts them, once per session, if need be)."""
    return request.getfixturevalue("real_stack")[name]


def real_settings(request: pytest.FixtureRequest) -> Settings:
    """The Settings that point at the real local services: their URLs and their secrets folder."""
    env = request.getfixturevalue("real_stack")
    return Settings(**{name.removeprefix("SMARTCITY_").lower(): value for name, value in env.items()})


@pytest.fixture
def unique() -> str:
    """A name part no other test (nor an earlier run) uses: tests isolate their topics, tables, keys by it."""
    return uuid.uuid4().hex[:12]
