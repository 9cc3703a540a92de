"""JWT attacks against every kind of door the gateway has: an API route (viewer), ``/system`` (admin) and an
ingest function (an ``ingest`` token scoped to its stream). Each forged token would pass the door if its
signature or claims were not checked; every one is refused with 401.

tests/unit/test_api_auth.py checks the same verifier claim by claim on a bare API app; here the doors are the
real functions of stack.yml behind the real gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jwt
import pytest

from smartcity.api.auth import AUDIENCE, ISSUER, KeyRing
from tests.problem_assertions import answered_problem
from tests.security.conftest import KEYED_STREAM

NOW = datetime.now(timezone.utc)
# (the door, the request, the role and scope a genuine token for it carries)
DOORS = {
    "api": ("GET", "/v1/traffic/segments", {"role": "viewer"}),
    "system": ("GET", "/system/functions", {"role": "admin"}),
    "ingest": ("POST", f"/function/ingest-{KEYED_STREAM}", {"role": "ingest", "scope": KEYED_STREAM}),
}


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(door: str, **changes: Any) -> dict[str, Any]:
    genuine = {"iss": ISSUER, "aud": AUDIENCE, "sub": "attacker", "iat": NOW, "exp": NOW + timedelta(hours=1),
               **DOORS[door][2]}
    return {key: value for key, value in {**genuine, **changes}.items() if value is not None}


def _hs256(keyring: KeyRing, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, keyring.signing_key("HS256"), algorithm="HS256")


def _plain(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: int(value.timestamp()) if isinstance(value, datetime) else value for key, value in payload.items()}


def _key_confusion(keyring: KeyRing, payload: dict[str, Any]) -> str:
    """HS256 signed with the RS256 public key as the HMAC secret: accepted by a verifier that takes the key for
    the algorithm the token names."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_plain(payload))}"
    public_pem = keyring.verification_key("RS256").encode()
    return f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


def _tampered(keyring: KeyRing, payload: dict[str, Any]) -> str:
    """A genuine viewer token whose payload is swapped for the door's role, the signature kept."""
    header, _, signature = _hs256(keyring, {**payload, "role": "viewer", "scope": None}).split(".")
    return f"{header}.{_b64(_plain(payload))}.{signature}"


ATTACKS: dict[str, tuple[Callable[[KeyRing, dict], str], dict[str, Any]]] = {
    "alg none": (lambda _, payload: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_plain(payload))}.", {}),
    "HS/RS key confusion": (_key_confusion, {}),
    "expired": (_hs256, {"iat": NOW - timedelta(hours=2), "exp": NOW - timedelta(hours=1)}),
    "not yet valid": (_hs256, {"nbf": NOW + timedelta(hours=1)}),
    "wrong audience": (_hs256, {"aud": "another-api"}),
    "wrong issuer": (_hs256, {"iss": "someone-else"}),
    "tampered payload": (_tampered, {}),
}


@pytest.mark.parametrize("door", DOORS)
def test_a_genuine_token_opens_the_door(doors, door):
    """The control: without it, a refusal below could come from anything."""
    method, path, _ = DOORS[door]
    token = _hs256(_keyring(doors), claims(door))
    answer = doors.client.request(method, path, json=[], headers={"authorization": f"Bearer {token}"})
    assert answer.status_code not in (401, 403), answer.text


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("door", DOORS)
def test_a_forged_or_stale_token_is_refused(doors, door, attack):
    forge, changes = ATTACKS[attack]
    method, path, _ = DOORS[door]
    token = forge(_keyring(doors), claims(door, **changes))
    answer = doors.client.request(method, path, json=[], headers={"authorization": f"Bearer {token}"})
    assert answered_problem(answer, 401)


def _keyring(doors) -> KeyRing:
    return KeyRing(doors.settings)
