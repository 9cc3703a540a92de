"""Who may write a stream: the ingest functions' credentials, and the gateway's admin check.

An ingest function takes a reading only from a caller that shows either

- an API key (``X-API-Key: <key>``) listed in the secret file ``ingest-api-keys``: a JSON list of
  ``{"source": "<who>", "sha256": "<hex digest of the key>", "streams": ["traffic-sensors", ...]}`` (``"*"``: every
  stream). Keys are stored hashed; :func:`add_ingest_key` makes one and appends its digest; or
- a JWT (``Authorization: Bearer``, :mod:`smartcity.api.auth`) with the role ``ingest`` whose ``scope`` claim
  names the stream (or ``*``).

No credentials, an unknown key or a bad token: 401. A key or token for another stream, or a token of another
role: 403. ``SMARTCITY_INGEST_ALLOW_ANONYMOUS`` lets a request without credentials through (local development;
production mode refuses it, :mod:`smartcity.runtime.production`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.responses import Response

from smartcity.api.auth import KeyRing, Role, verify_token
from smartcity.api.problems import ProblemError
from smartcity.errors import ConfigurationError
from smartcity.runtime.problems import problem_response
from smartcity.settings import Settings

logger = logging.getLogger(__name__)
INGEST_KEYS_SECRET = "ingest-api-keys"
API_KEY_HEADER = "x-api-key"
ALL_STREAMS = "*"
KEY_PREFIX = "sck_"


class IngestKey(BaseModel):
    """One API key of ``ingest-api-keys``: who holds it, its SHA-256 digest, the streams it may write."""

    source: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    streams: list[str] = Field(min_length=1)

    def may_write(self, stream: str) -> bool:
        return ALL_STREAMS in self.streams or stream in self.streams


KEY_LIST = TypeAdapter(list[IngestKey])


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_ingest_keys(path: Path) -> list[IngestKey]:
    """The keys of the secret file at ``path`` (none when it is missing); a malformed file names the secret."""
    if not path.is_file():
        return []
    try:
        return KEY_LIST.validate_json(path.read_bytes() or b"[]")
    except ValidationError as error:
        raise ConfigurationError(f"secret {INGEST_KEYS_SECRET}", f"{path}: {error}") from None


def add_ingest_key(secrets_dir: Path, source: str, streams: Sequence[str], replace: bool = False,
                   key: str | None = None) -> str:
    """A new API key for ``source`` writing ``streams`` (``key``, or a random one): its digest is appended to
    ``ingest-api-keys`` (made with mode 0600 when missing; ``replace``: the source's former keys are dropped); the
    key itself is returned once and stored nowhere."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    path = secrets_dir / INGEST_KEYS_SECRET
    kept = [entry for entry in read_ingest_keys(path) if not (replace and entry.source == source)]
    entries = kept + [IngestKey(source=source, sha256=key_digest(key), streams=list(streams))]
    secrets_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps([entry.model_dump() for entry in entries], indent=2) + "\n")
    return key


@dataclass
class Refusal(Exception):
    """Why a request is refused: 401 (who are you?) or 403 (not this), naming the header at fault."""

    status: int
    reason: str
    header: str = "authorization"

    def as_response(self, instance: str) -> Response:
        challenge = {"WWW-Authenticate": 'Bearer realm="smartcity", ApiKey header="X-API-Key"'} if self.status == 401 else {}
        return problem_response(self.status, self.reason, {f"header.{self.header}": self.reason}, instance=instance,
                                headers=challenge)


class IngestCredentials:
    """Decides whether a request may write ``stream``. The key file is read again when it changes."""

    def __init__(self, stream: str, settings: Settings) -> None:
        self.stream = stream
        self.settings = settings
        self.keyring = KeyRing(settings)
        self._keys: dict[str, IngestKey] = {}
        self._read_as: tuple[int, int] | None = None

    def _key(self, key: str) -> IngestKey | None:
        path = self.settings.secrets_dir / INGEST_KEYS_SECRET
        stat = path.stat() if path.is_file() else None
        version = (stat.st_mtime_ns, stat.st_size) if stat else None
        if version != self._read_as:
            self._keys = {entry.sha256: entry for entry in read_ingest_keys(path)}
            self._read_as = version
        return self._keys.get(key_digest(key))

    def source_of(self, headers: Mapping[str, str]) -> str:
        """The source writing (its key's ``source`` or token's subject), or a :class:`Refusal`."""
        key = headers.get(API_KEY_HEADER)
        if key:
            return self._source_of_key(key)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._source_of_token(token.strip())
        if self.settings.ingest_allow_anonymous:
            return "anonymous"
        raise Refusal(401, f"writing {self.stream} needs an X-API-Key or an Authorization: Bearer <ingest token>")

    def _source_of_key(self, key: str) -> str:
        entry = self._key(key)
        if entry is None:
            raise Refusal(401, "the API key is not known", API_KEY_HEADER)
        if not entry.may_write(self.stream):
            raise Refusal(403, f"the API key of {entry.source} may not write {self.stream}", API_KEY_HEADER)
        return entry.source

    def _source_of_token(self, token: str) -> str:
        try:
            caller = verify_token(self.keyring, token)
        except ProblemError as error:
            raise Refusal(401, error.detail) from None
        if caller.role is not Role.ingest:
            raise Refusal(403, f"writing readings needs the role ingest; the token has {caller.role.value}")
        if ALL_STREAMS not in caller.scopes and self.stream not in caller.scopes:
            raise Refusal(403, f"the token's scope does not name {self.stream}")
        return caller.subject

    def refusal(self, headers: Mapping[str, str], instance: str) -> Response | None:
        """The problem refusing a request with these headers, or None when it may write (the gateway asks this
        before accepting an async call, the function before every request)."""
        try:
            self.source_of(headers)
        except Refusal as refused:
            return refused.as_response(instance)
        return None
