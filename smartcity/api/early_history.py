"""The traffic history's early answer (:meth:`smartcity.api.app.ApiApp.add_early_route`): the API's busiest
uncached read, answered before FastAPI's routing, dependencies and validation, which cost more than its query.

Only a plain query is answered here: the route's parameters, each once and not empty, a known bucket, a zone
of the grid's pattern, a page size in range, and ``from``/``to`` as ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with ``Z``
or an offset. Its answer is made by the route's own code (:func:`smartcity.api.traffic_history.history_response`),
so it is the same byte for byte. Anything else (another spelling of a moment, an unknown parameter, a value the
route refuses) gets None, and the FastAPI route answers it, with its problem document where it is invalid.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.pagination import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from smartcity.api.timeseries import Bucket, time_range
from smartcity.api.traffic_history import history_response, history_scope
from smartcity.events.common import ZONE_PATTERN

PATH = "/v1/traffic/history"
PARAMETERS = frozenset({"sensor_id", "segment_id", "zone", "bucket", "limit", "from", "to", "cursor"})
BUCKETS = {bucket.value: bucket for bucket in Bucket}
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
ZONE = re.compile(ZONE_PATTERN)  # the Zone of the events


async def early_history(request: Request) -> Response | None:
    """The route's answer to a plain query, or None (see the module docstring)."""
    pairs = parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)  # as Starlette does
    query = dict(pairs)
    if len(query) != len(pairs) or not PARAMETERS.issuperset(query):
        return None
    if not all(query.values()):
        return None
    bucket = BUCKETS.get(query.get("bucket", Bucket.fifteen_minutes.value))
    limit = page_size(query.get("limit", "100"))
    cursor = query.get("cursor")
    zone = query.get("zone")
    moments = [moment(query.get(name)) for name in ("from", "to")]
    if (bucket is None or limit is None or (cursor is not None and len(cursor) > MAX_CURSOR_LENGTH)
            or (zone is not None and not ZONE.fullmatch(zone)) or False in moments):
        return None
    scope = history_scope(query.get("sensor_id"), query.get("segment_id"), zone)
    period = await time_range(*moments)
    database = request.app.state.context.read_database
    return await history_response(request, database, scope, bucket, period, limit, cursor)


def page_size(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_PAGE_SIZE else None


def moment(value: str | None) -> datetime | None | bool:
    """The moment ``value`` names (None when absent), or False when it is not in the plain form."""
    if value is None:
        return None
    if not MOMENT.fullmatch(value):
        return False
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # a day or an hour out of range: the route's problem
        return False
