"""Privacy at ingest: keyed pseudonyms for personal identifiers, coarser coordinates for personal positions.

Event models mark personal fields with ``json_schema_extra={"personal": True}``. At ingest, before anything is
published, :meth:`Pseudonymizer.apply` rewrites every such field of a validated event:

- a text identifier becomes ``ps_<32 hex>``, the HMAC-SHA256 of the value under the secret key
  ``pseudonym-key`` (a file in ``SMARTCITY_SECRETS_DIR``). The same identifier always gives the same pseudonym,
  so a vehicle can still be followed, but without the key nobody can recompute or reverse it; a personal
  entity ``id`` keeps its ``urn:ngsi-ld:<Type>:`` prefix, its local id pseudonymized;
- a position (a ``Location``, or a bare coordinate) is rounded to ``SMARTCITY_GPS_PRECISION_DECIMALS`` decimals
  (3 decimals is about 110 m; 2 about 1.1 km); a rounded point that falls outside the city's box is moved onto
  its edge, so that the event stays valid.

The raw values exist only in the request being handled: no store, log or topic sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from smartcity.events import Location, city, personal_fields
from smartcity.events.common import NGSI_PREFIX
from smartcity.settings import Settings, get_settings, read_secret

PSEUDONYM_KEY_SECRET = "pseudonym-key"
PSEUDONYM_PREFIX = "ps_"


def ensure_pseudonym_key(settings: Settings | None = None) -> Path:
    """The key file ``<secrets_dir>/pseudonym-key``, made with 256 random bits if missing (demo, tests).

    In production the key is a managed secret (an OpenFaaS secret); losing or changing it changes every pseudonym.
    """
    settings = settings or get_settings()
    path = settings.secrets_dir / PSEUDONYM_KEY_SECRET
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path


class Pseudonymizer:
    """Rewrites the personal fields of events. Build one per process with :meth:`from_settings`."""

    def __init__(self, key: bytes, gps_precision_decimals: int) -> None:
        if not key:
            raise ValueError("the pseudonym key is empty")
        self._key = key
        self.gps_precision_decimals = gps_precision_decimals

    @classmethod
    def from_secret(cls, key: SecretStr, gps_precision_decimals: int) -> Pseudonymizer:
        return cls(key.get_secret_value().encode("utf-8"), gps_precision_decimals)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Pseudonymizer:
        """The key from the secret file ``pseudonym-key``, the precision from the settings."""
        settings = settings or get_settings()
        return cls.from_secret(read_secret(PSEUDONYM_KEY_SECRET, settings), settings.gps_precision_decimals)

    def pseudonym(self, identifier: str) -> str:
        digest = hmac.new(self._key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def coarsen(self, coordinate: float) -> float:
        return round(coordinate, self.gps_precision_decimals)

    def coarsen_location(self, location: Location) -> Location:
        """The point rounded, then kept inside the city's box (an event outside it would be refused downstream)."""
        box = city()
        lon = min(max(self.coarsen(location.lon), box.west), box.east)
        lat = min(max(self.coarsen(location.lat), box.south), box.north)
        return Location(coordinates=(lon, lat))

    def apply(self, event: BaseModel) -> BaseModel:
        """A copy of ``event`` whose personal fields are pseudonymized (identifiers) or coarsened (positions)."""
        changes = {name: self._protect(name, getattr(event, name)) for name in personal_fields(type(event))}
        return event.model_copy(update=changes) if changes else event

    def _protect(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Location):
            return self.coarsen_location(value)
        if isinstance(value, float):
            return self.coarsen(value)
        if isinstance(value, str) and name == "id" and value.startswith(NGSI_PREFIX) and ":" in value[len(NGSI_PREFIX):]:
            cut = value.index(":", len(NGSI_PREFIX)) + 1  # a personal entity id stays an NGSI-LD id of its type
            return value[:cut] + self.pseudonym(value[cut:])
        if isinstance(value, str):
            return self.pseudonym(value)
        raise TypeError(f"personal field {name}: no protection for a {type(value).__name__} (text, float, Location)")
