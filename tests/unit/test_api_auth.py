"""JWT auth of the REST API: which tokens pass, which are refused, with which status and reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from smartcity.api.app import admin, create_api_app, operator, viewer
from smartcity.api.auth import (
    AUDIENCE,
    ISSUER,
    KeyRing,
    Role,
    create_local_keys,
    issue_token,
    verify_token,
)
from smartcity.api.problems import ProblemError
from smartcity.backends.cache import Cache, open_cache
from smartcity.settings import Settings


@dataclass
class TokensContext:
    """The API apps here check tokens: they need settings, and the cache the read shortcut looks into."""

    settings: Settings
    cache: Cache


@pytest.fixture(scope="module")
def keyring(tmp_path_factory) -> KeyRing:
    secrets_dir = tmp_path_factory.mktemp("secrets")
    create_local_keys(secrets_dir)
    return KeyRing(Settings(secrets_dir=secrets_dir))


@pytest.fixture(scope="module")
def client(keyring) -> TestClient:
    app = create_api_app("test", "auth rules", TokensContext(keyring._settings, open_cache(f"memory://auth-{uuid.uuid4().hex}")))

    @app.get("/v1/test/read")
    def read(caller=Depends(viewer)):
        return {"subject": caller.subject, "role": caller.role.value}

    @app.post("/v1/test/write")
    def write(caller=Depends(operator)):
        return {"subject": caller.subject}

    @app.delete("/v1/test/admin")
    def administer(caller=Depends(admin)):
        return {"subject": caller.subject}

    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _b64_claims(**overrides) -> str:
    return _b64({name: int(v.timestamp()) if isinstance(v, datetime) else v for name, v in claims(**overrides).items()})


def claims(**overrides) -> dict:
    now = datetime.now(timezone.utc)
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "tester", "role": "admin", "iat": now, "exp": now + timedelta(minutes=5)}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def assert_unauthorized(response, reason_part: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="smartcity-api", error="invalid_token"')
    problem = response.json()
    assert problem["status"] == 401
    assert reason_part in problem["detail"]
    assert problem["errors"][0]["field"] == "header.authorization"


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_a_token_signed_with_either_algorithm_is_accepted(client, keyring, algorithm):
    token = issue_token(keyring, "alice", Role.viewer, algorithm=algorithm)
    response = client.get("/v1/test/read", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"subject": "alice", "role": "viewer"}


def test_no_token_is_refused(client):
    assert_unauthorized(client.get("/v1/test/read"), "Authorization: Bearer")


def test_a_basic_credential_is_not_a_bearer_token(client):
    assert_unauthorized(client.get("/v1/test/read", headers={"Authorization": "Basic dXNlcjpwdw=="}), "Bearer")


def test_an_expired_token_is_refused(client, keyring):
    long_ago = datetime.now(timezone.utc) - timedelta(hours=2)
    token = issue_token(keyring, "alice", Role.admin, ttl=timedelta(minutes=5), now=long_ago)
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(token)), "expired")


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_a_bad_signature_is_refused(client, keyring, algorithm):
    token = issue_token(keyring, "alice", Role.admin, algorithm=algorithm)
    header, payload, signature = token.split(".")
    tampered_payload = _b64({**jwt.decode(token, options={"verify_signature": False}), "role": "admin", "sub": "mallory"})
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(f"{header}.{tampered_payload}.{signature}")), "signature")


def test_a_token_signed_with_another_key_is_refused(client):
    token = jwt.encode(claims(), "not-the-server-key-but-long-enough-for-hs256", algorithm="HS256")
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(token)), "signature")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(client, alg):
    unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64_claims()}."
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(unsigned)), "is not accepted")


def test_hs256_signed_with_the_rs256_public_key_is_refused(client, keyring):
    """The algorithm-confusion attack: the public key is never used as an HMAC secret."""
    public_pem = keyring.verification_key("RS256").encode()
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64_claims()
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    ).rstrip(b"=").decode()
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(f"{header}.{payload}.{signature}")), "signature")


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"iss": "someone-else"}, "issuer"),
        ({"aud": "another-api"}, "audience"),
        ({"role": None}, "lacks a claim"),
        ({"exp": None}, "lacks a claim"),
        ({"sub": None}, "lacks a claim"),
        ({"role": "superuser"}, "unknown role"),
    ],
)
def test_wrong_or_missing_claims_are_refused(client, keyring, override, reason):
    token = jwt.encode(claims(**override), keyring.signing_key("HS256"), algorithm="HS256")
    assert_unauthorized(client.get("/v1/test/read", headers=bearer(token)), reason)


def test_a_malformed_token_is_refused(client):
    assert_unauthorized(client.get("/v1/test/read", headers=bearer("not.a.jwt")), "malformed")


@pytest.mark.parametrize(
    "role, read, write, administer",
    [
        (Role.viewer, 200, 403, 403),
        (Role.operator, 200, 200, 403),
        (Role.admin, 200, 200, 200),
    ],
)
def test_roles_rank_viewer_operator_admin(client, keyring, role, read, write, administer):
    headers = bearer(issue_token(keyring, "bob", role))
    assert client.get("/v1/test/read", headers=headers).status_code == read
    assert client.post("/v1/test/write", headers=headers).status_code == write
    denied = client.delete("/v1/test/admin", headers=headers)
    assert denied.status_code == administer
    if administer == 403:
        assert denied.headers["content-type"] == "application/problem+json"
        assert "needs the role admin" in denied.json()["detail"]


def test_a_server_without_the_rs256_key_refuses_rs256_tokens(keyring, tmp_path):
    create_local_keys(tmp_path)
    (tmp_path / "jwt-rs256-public.pem").unlink()
    hs_only = KeyRing(Settings(secrets_dir=tmp_path))
    token = issue_token(keyring, "alice", Role.viewer, algorithm="RS256")
    with pytest.raises(ProblemError) as refused:
        verify_token(hs_only, token)
    assert refused.value.status == 401
    assert "does not accept RS256" in refused.value.detail


def test_local_keys_are_kept_unless_overwritten(tmp_path):
    first = create_local_keys(tmp_path)
    assert {path.name for path in first} == {"jwt-hs256-key", "jwt-rs256-private.pem", "jwt-rs256-public.pem"}
    hs_key = (tmp_path / "jwt-hs256-key").read_text()
    assert create_local_keys(tmp_path) == []
    assert (tmp_path / "jwt-hs256-key").read_text() == hs_key
    assert len(create_local_keys(tmp_path, overwrite=True)) == 3
    assert (tmp_path / "jwt-hs256-key").read_text() != hs_key


def test_a_remembered_token_is_still_refused_once_it_expires(keyring):
    token = issue_token(keyring, "alice", Role.viewer, ttl=timedelta(seconds=1))
    assert verify_token(keyring, token).subject == "alice"
    assert token in keyring.verified
    time.sleep(1.1)
    with pytest.raises(ProblemError) as refused:
        verify_token(keyring, token)
    assert refused.value.status == 401 and "expired" in refused.value.detail
