"""store-timeseries: the events of all eight streams into their time-series tables, in batches.

Idempotent on the event id (``COPY``, then ``INSERT ... ON CONFLICT DO NOTHING`` on ``(event_id, observed_at)``),
so it is marked ``idempotent`` and the runtime keeps no dedup marks for it; the daily partitions a batch needs are
created on the way. See :mod:`smartcity.storage.timeseries`.
"""

from functools import cache

from smartcity.runtime import Context, Event, cloudevent_function
from smartcity.storage.envelope import AnyStreamEvent, stored_events
from smartcity.storage.timeseries import TimeSeriesWriter


@cache
def writer(context: Context) -> TimeSeriesWriter:
    return TimeSeriesWriter(context.database)


@cloudevent_function(data=AnyStreamEvent, batch=500, idempotent=True)
def handle(events: list[Event[AnyStreamEvent]], context: Context) -> None:
    inserted = writer(context).write(stored_events(events))
    context.logger.debug("stored %d new rows of %d events", inserted, len(events))
