"""Encryption at rest of what the platform writes to object stores: raw archives, backups and model artifacts.

Envelope encryption with AES-256-GCM: every object gets a fresh 256-bit data key that encrypts its bytes; the
data key is itself encrypted ("wrapped") by a key-encryption key from the keyring secret ``encryption-keyring``
(a file in ``SMARTCITY_SECRETS_DIR``). The keyring holds several keys, each with an id; the last one listed
encrypts, all of them decrypt. An encrypted object is::

    b"SCENC1" | 4-byte big-endian header length | header (JSON) | AES-GCM ciphertext of the object's bytes

the header recording ``kid`` (the id of the key that wrapped the data key), the wrapped data key and both nonces.
Rotation (``smartcity keys rotate``) re-wraps each object's data key with the newest key, rewriting only the
header: the ciphertext stays. An object whose key was removed from the keyring cannot be read, and says which key
it needs. Objects written before encryption was turned on (no ``SCENC1`` prefix) are read as they are.

``SMARTCITY_ENCRYPT_AT_REST``: ``auto`` (encrypt when the keyring secret exists), ``on`` (refuse to work without
it) or ``off`` (write plaintext; encrypted objects are still read when the keyring is there).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartcity.backends.objects import ObjectStore
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings, get_settings

KEYRING_SECRET = "encryption-keyring"
MAGIC = b"SCENC1"
ALGORITHM = "AES-256-GCM"
DATA_AAD = b"smartcity-at-rest-v1"  # the ciphertext's associated data: constant, so that re-wrapping keeps it valid
_LENGTH = struct.Struct(">I")


class EncryptionError(Exception):
    """An object cannot be decrypted (its key is not in the keyring, or its bytes were changed): says which."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Keyring:
    """Key-encryption keys by id; the last one encrypts."""

    keys: dict[str, bytes]

    @property
    def current(self) -> str:
        return list(self.keys)[-1]

    @classmethod
    def parse(cls, text: str, source: str = KEYRING_SECRET) -> Keyring:
        try:
            entries = json.loads(text)["keys"]
            keys = {entry["id"]: base64.b64decode(entry["key"], validate=True) for entry in entries}
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(source, f'not a keyring ({{"keys": [{{"id": ..., "key": base64}}]}}): {error}') from None
        bad = [kid for kid, key in keys.items() if len(key) != 32]
        if not keys or bad:
            raise ConfigurationError(source, f"needs at least one key, each of 32 bytes; wrong: {bad or 'no key'}")
        return cls(keys)

    def to_text(self) -> str:
        return json.dumps({"keys": [{"id": kid, "key": _b64(key)} for kid, key in self.keys.items()]}, indent=1)

    def with_new_key(self, now: datetime | None = None) -> Keyring:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        kid = f"k{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        return Keyring({**self.keys, kid: AESGCM.generate_key(256)})

    def without(self, kid: str) -> Keyring:
        if kid not in self.keys:
            raise ConfigurationError(KEYRING_SECRET, f"no key {kid!r}; the keyring has {', '.join(self.keys)}")
        if len(self.keys) == 1:
            raise ConfigurationError(KEYRING_SECRET, "the last key cannot be removed")
        return Keyring({k: v for k, v in self.keys.items() if k != kid})


# --- the keyring secret ---------------------------------------------------------------------------------------


def keyring_path(settings: Settings) -> Path:
    return settings.secrets_dir / KEYRING_SECRET


def load_keyring(settings: Settings) -> Keyring | None:
    """The keyring of ``settings``' secrets folder, None when its file does not exist."""
    path = keyring_path(settings)
    return Keyring.parse(path.read_text(), str(path)) if path.exists() else None


def save_keyring(settings: Settings, keyring: Keyring) -> Path:
    """Write the keyring file (mode 600), replacing it in one step."""
    path = keyring_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.touch(mode=0o600)
    partial.write_text(keyring.to_text())
    partial.replace(path)
    return path


def ensure_keyring(settings: Settings) -> Path:
    """The keyring file, made with one key if missing (the demo's, like its JWT key)."""
    if load_keyring(settings) is None:
        save_keyring(settings, Keyring({}).with_new_key())
    return keyring_path(settings)


# --- the envelope ---------------------------------------------------------------------------------------------


def is_encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def encrypt(keyring: Keyring, data: bytes) -> bytes:
    kid = keyring.current
    data_key, nonce, wrap_nonce = AESGCM.generate_key(256), os.urandom(12), os.urandom(12)
    header = {"alg": ALGORITHM, "kid": kid, "nonce": _b64(nonce), "wrap_nonce": _b64(wrap_nonce),
              "wrapped_key": _b64(AESGCM(keyring.keys[kid]).encrypt(wrap_nonce, data_key, kid.encode()))}
    return _pack(header, AESGCM(data_key).encrypt(nonce, data, DATA_AAD))


def header_of(data: bytes, name: str = "object") -> tuple[dict, bytes]:
    """The header of an encrypted object and its ciphertext."""
    try:
        (length,) = _LENGTH.unpack_from(data, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size
        return json.loads(data[start:start + length]), data[start + length:]
    except (struct.error, ValueError) as error:
        raise EncryptionError(f"{name}: damaged encryption header ({error})") from None


def decrypt(keyring: Keyring | None, data: bytes, name: str = "object") -> bytes:
    """The plaintext of ``data``; plaintext objects (written before encryption) come back as they are."""
    if not is_encrypted(data):
        return data
    header, ciphertext = header_of(data, name)
    try:
        return AESGCM(_data_key(keyring, header, name)).decrypt(_nonce(header, "nonce"), ciphertext, DATA_AAD)
    except InvalidTag:
        raise EncryptionError(f"{name}: the ciphertext does not authenticate (changed or damaged bytes)") from None


def rewrap(keyring: Keyring, data: bytes, name: str = "object") -> bytes | None:
    """``data`` with its data key wrapped by the newest key (plaintext is encrypted); None when it already is."""
    if not is_encrypted(data):
        return encrypt(keyring, data)
    header, ciphertext = header_of(data, name)
    if header["kid"] == keyring.current:
        return None
    data_key, wrap_nonce = _data_key(keyring, header, name), os.urandom(12)
    wrapped = AESGCM(keyring.keys[keyring.current]).encrypt(wrap_nonce, data_key, keyring.current.encode())
    return _pack({**header, "kid": keyring.current, "wrap_nonce": _b64(wrap_nonce), "wrapped_key": _b64(wrapped)},
                 ciphertext)


def _pack(header: dict, ciphertext: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + _LENGTH.pack(len(text)) + text + ciphertext


def _nonce(header: dict, field: str) -> bytes:
    return base64.b64decode(header[field])


def _data_key(keyring: Keyring | None, header: dict, name: str) -> bytes:
    kid = header.get("kid")
    if keyring is None:
        raise EncryptionError(f"{name} is encrypted with key {kid!r}, but there is no keyring: the secret file "
                              f"{KEYRING_SECRET} is missing from SMARTCITY_SECRETS_DIR")
    if kid not in keyring.keys:
        raise EncryptionError(f"{name} is encrypted with key {kid!r}, which is not in the keyring "
                              f"(it has {', '.join(keyring.keys)}): the key was removed before the object was re-wrapped")
    try:
        return AESGCM(keyring.keys[kid]).decrypt(_nonce(header, "wrap_nonce"), base64.b64decode(header["wrapped_key"]),
                                                 kid.encode())
    except InvalidTag:
        raise EncryptionError(f"{name}: key {kid!r} of the keyring does not unwrap its data key (a different key "
                              "under the same id?)") from None


# --- object stores --------------------------------------------------------------------------------------------


class EncryptedObjects:
    """An object store whose puts are encrypted (when a keyring is given) and whose gets are decrypted."""

    def __init__(self, objects: ObjectStore, keyring: Keyring | None, encrypt_writes: bool) -> None:
        self.objects = objects
        self.keyring = keyring
        self.encrypt_writes = encrypt_writes and keyring is not None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects.put(key, encrypt(self.keyring, data) if self.encrypt_writes else data, content_type)

    def get(self, key: str) -> bytes:
        return decrypt(self.keyring, self.objects.get(key), f"object {key}")

    def exists(self, key: str) -> bool:
        return self.objects.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.objects.list(prefix)

    def delete(self, key: str) -> None:
        self.objects.delete(key)

    def close(self) -> None:
        self.objects.close()


def at_rest(objects: ObjectStore, settings: Settings | None = None) -> ObjectStore:
    """``objects`` encrypting what is written and decrypting what is read, as ``SMARTCITY_ENCRYPT_AT_REST`` says."""
    if isinstance(objects, EncryptedObjects):
        return objects
    settings = settings or get_settings()
    keyring = load_keyring(settings)
    if settings.encrypt_at_rest == "on" and keyring is None:
        raise ConfigurationError("SMARTCITY_ENCRYPT_AT_REST", f"is on, but the keyring secret {keyring_path(settings)} "
                                 "is missing (`smartcity keys add` makes one)")
    return EncryptedObjects(objects, keyring, settings.encrypt_at_rest != "off")


def rotate(objects: ObjectStore, keyring: Keyring, prefixes: list[str]) -> dict[str, int]:
    """Re-wrap every object under ``prefixes`` with the newest key; counts of ``rewrapped``, ``encrypted`` (were
    plaintext) and ``current`` (already were)."""
    counts = {"rewrapped": 0, "encrypted": 0, "current": 0}
    for prefix in prefixes:
        for key in objects.list(prefix):
            data = objects.get(key)
            new = rewrap(keyring, data, f"object {key}")
            if new is None:
                counts["current"] += 1
                continue
            objects.put(key, new)
            counts["rewrapped" if is_encrypted(data) else "encrypted"] += 1
    return counts
