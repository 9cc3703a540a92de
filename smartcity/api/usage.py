"""How to call the REST API, as the demo prints it: the docs page, a token, and a few curl commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

EXAMPLE_PATHS = (
    "/v1/traffic/segments?limit=5",
    "/v1/traffic/history?bucket=15m",
    "/v1/transport/delays/lines",
    "/v1/mobility/bike-stations?min_bikes=1",
    "/v1/incidents?state=open",
    "/v1/analytics/kpis",
    "/v1/traffic/forecast/accuracy?hours=1",
)
# Paths whose time range defaults to the hour before now: given the city's day when it runs off the wall clock.
TIME_RANGED = ("/v1/traffic/history", "/v1/transport/delays/lines", "/v1/analytics/kpis")


def how_to_call(base_url: str, token: str, segment_id: str | None = None, city_start: datetime | None = None) -> str:
    """Lines for a person: where the docs are, the token to send, and curl commands to copy (with the forecast of
    ``segment_id`` if given; with ``from``/``to`` over the day from ``city_start`` where the city does not run at
    the wall clock's time)."""
    base_url = base_url.rstrip("/")
    paths = [_in_city_time(path, city_start) for path in EXAMPLE_PATHS]
    if segment_id is not None:  # ids hold '%' (SUMO's '#' escaped): quoted, the API reads back the same id
        paths.insert(-1, f"/v1/traffic/forecast?segment_id={quote(segment_id, safe=':')}")
    lines = [
        f"REST API: {base_url}/v1/docs (OpenAPI document: {base_url}/v1/openapi.json)",
        "Every route needs a bearer token; this one is a viewer's, valid one hour",
        "(others: smartcity token issue --role operator|admin):",
        f"  export TOKEN={token}",
    ]
    lines += [f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}{path}"' for path in paths]
    lines.append(
        f'  curl -s -X POST -H "Authorization: Bearer $OPERATOR_TOKEN" -H "Content-Type: application/json" '
        f'"{base_url}/v1/incidents" -d \'{{"category": "roadWorks", "severity": "low", "description": "Lane closed", '
        f'"location": {{"type": "Point", "coordinates": [6.955, 50.965]}}}}\''
    )
    return "\n".join(lines)


def _in_city_time(path: str, city_start: datetime | None) -> str:
    if city_start is None or not path.startswith(TIME_RANGED):
        return path
    start = city_start.astimezone(timezone.utc).replace(microsecond=0)
    span = f"from={start:%Y-%m-%dT%H:%M:%SZ}&to={start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    return f"{path}{'&' if '?' in path else '?'}{span}"
