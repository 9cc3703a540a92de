"""Credentials for tests that call the gateway: an ingest API key (the ingest functions take no anonymous readings)
and an admin token (``/system/*``), made in the test's own secrets folder."""

from __future__ import annotations

from typing import Sequence

from smartcity.api.auth import KeyRing, Role, create_local_keys, issue_token
from smartcity.runtime.credentials import ALL_STREAMS, add_ingest_key
from smartcity.settings import Settings


def ingest_headers(settings: Settings, streams: Sequence[str] = (ALL_STREAMS,), source: str = "tests") -> dict[str, str]:
    """The header of a fresh API key of ``source`` that may write ``streams``."""
    return {"x-api-key": add_ingest_key(settings.secrets_dir, source, streams)}


def bearer(settings: Settings, role: Role, scopes: Sequence[str] = ()) -> dict[str, str]:
    """The header of a token of ``role`` signed with the folder's HS256 key (made when missing)."""
    create_local_keys(settings.secrets_dir)
    return {"authorization": f"Bearer {issue_token(KeyRing(settings), f'test-{role.value}', role, scopes=scopes)}"}


def admin_headers(settings: Settings) -> dict[str, str]:
    return bearer(settings, Role.admin)
