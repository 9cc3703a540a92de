"""What the GBFS feeds share: JSON documents, GBFS times, and positions (:mod:`smartcity.connectors.gbfs`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from smartcity.connectors.polling import MalformedFeed


def load_json(url: str, body: bytes) -> dict[str, Any]:
    """A JSON object, or :class:`MalformedFeed` naming the body."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise MalformedFeed(url, "body", f"not JSON: {error}", body) from None
    if not isinstance(document, dict):
        raise MalformedFeed(url, "body", "not a JSON object", body)
    return document


def timestamp(value: Any) -> str | None:
    """GBFS time (2.3: POSIX seconds, 3.0: RFC 3339) as ISO 8601 with a timezone; None when absent."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    return value if isinstance(value, str) else None


def point(entity: dict[str, Any]) -> dict[str, Any] | None:
    """A GeoJSON point from an entity's ``lat`` and ``lon``; None when either is absent."""
    if entity.get("lon") is None or entity.get("lat") is None:
        return None
    return {"type": "Point", "coordinates": [entity["lon"], entity["lat"]]}
