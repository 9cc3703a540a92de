"""Production mode (``SMARTCITY_MODE=production``) refuses to start with demo or default secrets.

Refused, each with a :class:`~smartcity.errors.ConfigurationError` naming the secret or setting:

- ``SMARTCITY_INGEST_ALLOW_ANONYMOUS`` (anonymous ingest is for local development);
- a JWT key (``jwt-hs256-key``, ``jwt-rs256-public.pem``) or the ingest key list (``ingest-api-keys``) that is
  missing, empty, or marked as made by ``smartcity demo`` (:data:`DEMO_MARK` beside it in the secrets folder);
  a function container checks those its ``stack.yml`` entry lists (the secrets it has), the gateway all;
- an ingest key list holding no key, or the demo simulator's key;
- the keyring of the encryption at rest (``encryption-keyring``) missing, empty or the demo's, where it is a secret
  of the container; ``SMARTCITY_ENCRYPT_AT_REST=off``.

The gateway checks this when it is built, every function server when it starts.
"""

from __future__ import annotations

from typing import Sequence

from smartcity.api.auth import HS256_KEY_FILE, RS256_PUBLIC_KEY_FILE
from smartcity.errors import ConfigurationError
from smartcity.runtime.credentials import INGEST_KEYS_SECRET, read_ingest_keys
from smartcity.settings import Settings
from smartcity.storage.encryption import KEYRING_SECRET

# `smartcity demo` writes this file into its secrets folder: its secrets are for the demo only.
DEMO_MARK = ".made-by-smartcity-demo"
DEMO_SOURCE = "demo-simulator"
PRODUCTION_SECRETS = (HS256_KEY_FILE, RS256_PUBLIC_KEY_FILE, INGEST_KEYS_SECRET, KEYRING_SECRET)


def unsafe_production(settings: Settings, secrets: Sequence[str] = PRODUCTION_SECRETS) -> list[ConfigurationError]:
    """What production mode refuses in ``settings`` and the ``secrets`` of their secrets folder (nothing outside
    production)."""
    if settings.mode != "production":
        return []
    problems = []
    if settings.ingest_allow_anonymous:
        problems.append(ConfigurationError("ingest_allow_anonymous", "anonymous ingest is refused in production "
                                           "mode (unset SMARTCITY_INGEST_ALLOW_ANONYMOUS)"))
    if settings.encrypt_at_rest == "off":
        problems.append(ConfigurationError("encrypt_at_rest", "archives, backups and model artifacts must be "
                                           "encrypted in production mode (unset SMARTCITY_ENCRYPT_AT_REST)"))
    demo = (settings.secrets_dir / DEMO_MARK).exists()
    for name in (name for name in PRODUCTION_SECRETS if name in secrets):
        path = settings.secrets_dir / name
        if demo:
            problems.append(ConfigurationError(f"secret {name}", f"{path} was made by `smartcity demo`; "
                                               "give production secrets"))
        elif not path.is_file() or not path.read_text().strip():
            problems.append(ConfigurationError(f"secret {name}", f"{path} is missing or empty"))
    keys = settings.secrets_dir / INGEST_KEYS_SECRET
    if INGEST_KEYS_SECRET in secrets and not demo and keys.is_file() and keys.read_text().strip():
        entries = read_ingest_keys(keys)
        if not entries:
            problems.append(ConfigurationError(f"secret {INGEST_KEYS_SECRET}", f"{keys} lists no key"))
        if any(entry.source == DEMO_SOURCE for entry in entries):
            problems.append(ConfigurationError(f"secret {INGEST_KEYS_SECRET}", f"{keys} holds the demo "
                                               f"simulator's key ({DEMO_SOURCE})"))
    return problems


def refuse_unsafe_production(settings: Settings, secrets: Sequence[str] = PRODUCTION_SECRETS) -> None:
    """Raise one ConfigurationError naming every refusal of :func:`unsafe_production`, if any."""
    problems = unsafe_production(settings, secrets)
    if problems:
        raise ConfigurationError("SMARTCITY_MODE=production", "; ".join(str(problem) for problem in problems))
