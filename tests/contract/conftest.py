"""Contract-suite wiring: each backend kind's suite runs against its embedded implementation and its real server.

A backend fixture is parametrized with ``embedded`` (a temporary folder or in-process store) and ``real`` (the
server that ``real_stack`` started); ``pytest tests/contract -k embedded`` runs the suites with no server at all.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest

from smartcity.settings import Settings

IMPLEMENTATIONS = ["embedded", pytest.param("real", marks=pytest.mark.real)]


def real_settings(request: pytest.FixtureRequest) -> Settings:
    """The Settings that point at the real local services (started once per session if need be)."""
    env = request.getfixturevalue("real_stack")
    return Settings(**{name.removeprefix("SMARTCITY_").lower(): value for name, value in env.items()})


def open_implementation(request: pytest.FixtureRequest, opener: Callable[..., Any], embedded_url: str, url_field: str) -> Any:
    """The backend a parametrized fixture stands for: the embedded one at ``embedded_url``, or the real server
    that the setting ``url_field`` of the real stack names."""
    if request.param == "embedded":
        return opener(embedded_url)
    settings = real_settings(request)
    return opener(getattr(settings, url_field), settings=settings)


@pytest.fixture
def unique() -> str:
    """A name part no other test (nor an earlier run) uses: tests isolate their topics, tables, keys by it."""
    return uuid.uuid4().hex[:12]
