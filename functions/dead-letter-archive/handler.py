"""dead-letter-archive: keeps every dead-lettered event in the document store, with why it failed.

Triggered by the ``dead-letter`` topic. Each event there is the original one (or, for a record that was not a
valid event, the record wrapped as Knative's KafkaSource wraps it) with Knative's error extensions:
``knativeerrordest`` (the function it failed in), ``knativeerrorcode`` (400 invalid, 500 failed) and
``knativeerrordata`` (the error, base64). They are stored in the ``dead_letters`` collection, one document per
(function, source, id), decoded and queryable, with the original attributes and data so an operator can see
what failed, why, and replay it. Dead letters may hold personal data not yet pseudonymized (an ingest function
that failed never got to it): the collection is for operators only, not exposed by the public API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from smartcity.runtime import Context, Event, cloudevent_function

COLLECTION = "dead_letters"
ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
FUNCTION_ROUTE = "/function/"


def _error(encoded: str | None) -> Any:
    """``knativeerrordata`` decoded: the JSON the runtime wrote, else the text Knative forwarded."""
    if not encoded:
        return None
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return encoded
    try:
        return json.loads(text)
    except ValueError:
        return text  # truncated at 1024 bytes, or not JSON


def _data(data: Any) -> Any:
    if isinstance(data, bytes):
        return {"base64": base64.b64encode(data).decode("ascii")}
    return data


def dead_letter_document(event: Event, archived_at: datetime) -> dict[str, Any]:
    """The archive document of one dead-lettered event."""
    attributes = event.cloudevent.get_attributes()
    destination = attributes.get("knativeerrordest") or ""
    function = destination.rsplit(FUNCTION_ROUTE, 1)[-1] if FUNCTION_ROUTE in destination else destination or None
    code = attributes.get("knativeerrorcode")
    key = f"{function}\0{event.source}\0{event.id}".encode("utf-8")
    return {
        "_id": hashlib.sha1(key).hexdigest(),
        "function": function,
        "code": int(code) if code and str(code).isdigit() else code,
        "error": _error(attributes.get("knativeerrordata")),
        "event": {name: value.isoformat() if isinstance(value, datetime) else value
                  for name, value in attributes.items() if name not in ERROR_EXTENSIONS},
        "data": _data(event.data),
        "archived_at": archived_at.isoformat(),
    }


@cloudevent_function(data=None, batch=200)
def handle(events: list[Event], context: Context) -> None:
    now = datetime.now(timezone.utc)
    documents = [dead_letter_document(event, now) for event in events]
    added = context.documents.insert_many(COLLECTION, documents)
    context.logger.info("archived %d dead letters (%d already there)", added, len(documents) - added)
