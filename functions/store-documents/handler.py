"""store-documents: every event as a device payload document, and each incident with its timeline.

Idempotent: payloads are keyed by event id, an incident's timeline by its reports' event ids. See
:mod:`smartcity.storage.documents`.
"""

from smartcity.runtime import Context, Event, cloudevent_function
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.envelope import AnyStreamEvent, stored_events


@cloudevent_function(data=AnyStreamEvent, batch=200)
def handle(events: list[Event[AnyStreamEvent]], context: Context) -> None:
    DocumentWriter(context.documents).write(stored_events(events))
