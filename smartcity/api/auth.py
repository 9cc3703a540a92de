"""JWT bearer authentication and role checks for the REST API.

Tokens are signed with HS256 (a shared key) or RS256 (a key pair); the keys are secret files read through
:func:`smartcity.settings.read_secret`: ``jwt-hs256-key``, ``jwt-rs256-public.pem`` (to verify) and
``jwt-rs256-private.pem`` (to issue). A server verifies only the algorithms whose key file it has.

A token must carry ``iss`` = :data:`ISSUER`, ``aud`` = :data:`AUDIENCE`, ``sub``, ``role``, ``iat`` and ``exp``.
Refused with 401 (and a ``WWW-Authenticate`` header saying why): no token, ``alg: none`` or any algorithm other
than HS256/RS256, a bad signature, an expired token, a wrong issuer or audience, a missing claim. Refused with
403: a role below the one the route needs. Roles rank ingest < viewer < operator < admin: an ``ingest`` token
(a device or gateway writing readings, its streams in the ``scope`` claim) reads nothing.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Sequence

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smartcity.api.problems import FieldError, ProblemError
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings, read_secret

ISSUER = "smartcity"
AUDIENCE = "smartcity-api"
ALGORITHMS = ("HS256", "RS256")
HS256_KEY_FILE = "jwt-hs256-key"
RS256_PUBLIC_KEY_FILE = "jwt-rs256-public.pem"
RS256_PRIVATE_KEY_FILE = "jwt-rs256-private.pem"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "role", "iat", "exp"]
VERIFIED_TOKENS_KEPT = 10_000


class Role(str, Enum):
    """What a caller may do: ingest writes readings of its scope's streams only, viewers read, operators also write
    incidents, admins also administer."""

    ingest = "ingest"
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {role: rank for rank, role in enumerate(Role)}


@dataclass(frozen=True)
class Principal:
    """The verified caller of one request."""

    subject: str
    role: Role
    expires_at: datetime
    scopes: frozenset[str] = frozenset()  # an ingest token's streams (``scope``: space-separated names, or *)


class KeyRing:
    """The JWT keys of one process, read from the secret files on first use and kept.

    It also remembers the tokens it verified (up to :data:`VERIFIED_TOKENS_KEPT`): a client sends the same token
    on every request, and checking a signature costs more than the rest of a cached read. A remembered token is
    still refused once it expires.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, Any] = {}
        self.verified: dict[str, Principal] = {}

    def _read(self, file_name: str) -> str:
        if file_name not in self._keys:
            self._keys[file_name] = read_secret(file_name, self._settings).get_secret_value()
        return self._keys[file_name]

    def verification_key(self, algorithm: str) -> str | None:
        """The key that verifies ``algorithm``'s signatures, or None when this server has no key file for it."""
        try:
            return self._read(HS256_KEY_FILE if algorithm == "HS256" else RS256_PUBLIC_KEY_FILE)
        except ConfigurationError:
            return None

    def signing_key(self, algorithm: str) -> str:
        """The key that signs with ``algorithm``; a missing key file is a ConfigurationError naming it."""
        return self._read(HS256_KEY_FILE if algorithm == "HS256" else RS256_PRIVATE_KEY_FILE)


def issue_token(
    keyring: KeyRing,
    subject: str,
    role: Role,
    algorithm: str = "HS256",
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    scopes: Sequence[str] = (),
) -> str:
    """A signed token for ``subject`` with ``role``, valid for ``ttl`` from ``now``; ``scopes`` go into its
    ``scope`` claim (an ingest token's streams)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not supported; use one of {', '.join(ALGORITHMS)}")
    issued_at = now or datetime.now(timezone.utc)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "role": Role(role).value,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": uuid.uuid4().hex,
    }
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, keyring.signing_key(algorithm), algorithm=algorithm)


def unauthorized(reason: str) -> ProblemError:
    """401 with the RFC 6750 ``WWW-Authenticate`` challenge that says why."""
    description = reason.replace('"', "'").encode("ascii", "replace").decode()
    challenge = f'Bearer realm="{AUDIENCE}", error="invalid_token", error_description="{description}"'
    return ProblemError(
        401, reason, [FieldError(field="header.authorization", reason=reason)], {"WWW-Authenticate": challenge}
    )


def _verification_failure(exc: jwt.PyJWTError) -> str:
    reasons = {
        jwt.ExpiredSignatureError: "the token has expired",
        jwt.InvalidSignatureError: "the token's signature does not verify",
        jwt.InvalidAudienceError: f"the token's audience is not {AUDIENCE!r}",
        jwt.InvalidIssuerError: f"the token's issuer is not {ISSUER!r}",
        jwt.ImmatureSignatureError: "the token is not valid yet",
        jwt.MissingRequiredClaimError: f"the token lacks a claim: {exc}",
    }
    for kind, reason in reasons.items():
        if isinstance(exc, kind):
            return reason
    return f"the token is malformed: {exc}"


def verify_token(keyring: KeyRing, token: str) -> Principal:
    """The principal a token names, or a 401 :class:`ProblemError` saying why it is refused."""
    known = keyring.verified.get(token)
    if known is not None:
        if known.expires_at <= datetime.now(timezone.utc):
            del keyring.verified[token]
            raise unauthorized("the token has expired")
        return known
    principal = _verify_signed_token(keyring, token)
    if len(keyring.verified) >= VERIFIED_TOKENS_KEPT:
        keyring.verified.clear()
    keyring.verified[token] = principal
    return principal


def _verify_signed_token(keyring: KeyRing, token: str) -> Principal:
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise unauthorized(f"the token is malformed: {exc}") from None
    if algorithm not in ALGORITHMS:
        raise unauthorized(f"algorithm {algorithm!r} is not accepted; tokens must be signed with HS256 or RS256")
    key = keyring.verification_key(algorithm)
    if key is None:
        raise unauthorized(f"this server does not accept {algorithm} tokens")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise unauthorized(_verification_failure(exc)) from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise unauthorized(f"unknown role {claims['role']!r}; roles are {', '.join(r.value for r in Role)}") from None
    return Principal(str(claims["sub"]), role, datetime.fromtimestamp(claims["exp"], timezone.utc),
                     frozenset(str(claims.get("scope", "")).split()))


bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="A JWT (HS256 or RS256) from `smartcity token issue --role viewer|operator|admin`.",
)


def require_role(minimum: Role) -> Callable[..., Any]:
    """A FastAPI dependency: the verified principal, if its role is at least ``minimum`` (else 401/403)."""

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
    ) -> Principal:
        authorization = f"Bearer {credentials.credentials}" if credentials is not None else None
        return caller_with_role(request.app.state.keyring, authorization, minimum)

    return principal


def caller_with_role(keyring: KeyRing, authorization: str | None, minimum: Role) -> Principal:
    """The caller an ``Authorization: Bearer`` header names, if its role is at least ``minimum``; else a 401 or
    403 :class:`ProblemError`."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("an Authorization: Bearer <token> header is required")
    caller = verify_token(keyring, token.strip())
    if caller.role.rank < minimum.rank:
        raise ProblemError(403, f"this needs the role {minimum.value} or above; the token has {caller.role.value}")
    return caller


def create_local_keys(secrets_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write a fresh HS256 key and RS256 key pair into ``secrets_dir``; return the files written.

    Existing files are kept unless ``overwrite``: tokens issued with them stay valid.
    """
    secrets_dir.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    contents = {
        HS256_KEY_FILE: secrets.token_hex(32).encode(),
        RS256_PRIVATE_KEY_FILE: private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        RS256_PUBLIC_KEY_FILE: private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    if not overwrite and (secrets_dir / RS256_PRIVATE_KEY_FILE).exists() != (secrets_dir / RS256_PUBLIC_KEY_FILE).exists():
        raise ConfigurationError("secrets", f"only half of the RS256 key pair is in {secrets_dir}; use overwrite")
    written = []
    for name, data in contents.items():
        path = secrets_dir / name
        if path.exists() and not overwrite:
            continue
        path.write_bytes(data)
        path.chmod(0o600)
        written.append(path)
    return written
