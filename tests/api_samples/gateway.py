"""The API over the sample city: the local gateway over the five API functions of ``stack.yml``, its settings (every
backend embedded in a folder), tokens, a test client, and the checks the API's tests share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from smartcity.settings import Settings
from tests.api_samples.sample_city import SampleCity, seed_sample_city
from tests.problem_assertions import answered_problem

API_FUNCTIONS = ("api-traffic", "api-transport", "api-mobility", "api-incidents", "api-analytics")


def api_gateway(settings: Settings, stack_file: Path | None = None) -> FastAPI:
    """The local gateway serving the API functions of ``stack.yml`` (and their merged OpenAPI document)."""
    from smartcity.runtime.context import Backends
    from smartcity.runtime.gateway import create_gateway
    from smartcity.runtime.loader import load_stack

    backends = Backends()
    functions = load_stack(stack_file or settings.stack_file, settings, API_FUNCTIONS, backends)
    return create_gateway(functions, backends)


def sample_settings(directory: Path, **overrides: Any) -> Settings:
    """Settings with every backend embedded under ``directory`` (a cache of its own), and JWT keys there."""
    from smartcity.api.auth import create_local_keys

    create_local_keys(directory / "secrets")
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{directory}/smartcity.db",
        "cache_url": f"memory://api-{directory.name}",
        "documents_url": f"embedded:///{directory}/documents.db",
        "bus_url": f"file://{directory}/bus",
        "objects_url": f"file://{directory}/objects",
        "secrets_dir": directory / "secrets",
    }
    return Settings(**{**values, **overrides})


def backends_of(gateway: FastAPI) -> dict[str, Any]:
    """The database, cache and documents the gateway's API functions use (one of each, shared)."""
    context = gateway.state.functions[API_FUNCTIONS[0]].context
    return {"database": context.database, "cache": context.cache, "documents": context.documents}


@dataclass
class SampleApi:
    """The API gateway over a seeded sample city, and tokens to call it with."""

    gateway: FastAPI
    settings: Settings
    sample: SampleCity

    def token(self, role: str = "viewer", algorithm: str = "HS256", ttl: timedelta = timedelta(hours=1),
              now: datetime | None = None) -> str:
        from smartcity.api.auth import KeyRing, Role, issue_token

        return issue_token(KeyRing(self.settings), f"sample-{role}", Role(role), algorithm, ttl, now)

    def headers(self, role: str = "viewer", algorithm: str = "HS256") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, algorithm)}"}


def open_sample_api(directory: Path, now: datetime | None = None, **overrides: Any) -> SampleApi:
    """Settings under ``directory`` (or ``overrides``), the gateway over the API functions, the sample written."""
    settings = sample_settings(directory, **overrides)
    gateway = api_gateway(settings)
    backends = backends_of(gateway)
    sample = seed_sample_city(backends["database"], backends["cache"], backends["documents"], settings, now)
    return SampleApi(gateway, settings, sample)


@contextmanager
def sample_client(directory: Path, role: str | None = "viewer", **overrides: Any) -> Iterator[tuple[SampleApi, Any]]:
    """The sample API and a test client of its gateway (lifespan run), sending a ``role`` token unless None."""
    from fastapi.testclient import TestClient

    sample_api = open_sample_api(directory, **overrides)
    with TestClient(sample_api.gateway) as client:
        if role is not None:
            client.headers.update(sample_api.headers(role))
        yield sample_api, client


def query_time(moment: datetime) -> str:
    """A moment as the tests send it in ``from``/``to``: ISO 8601, UTC written ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The problem document of a refused request, once checked (:func:`tests.problem_assertions.answered_problem`)
    and, when ``field`` is given, that one of its errors names that field."""
    fields = answered_problem(response, status)
    if field:
        assert field in fields, fields
    return response.json()
