"""archive-raw: the raw events as Parquet in the object store, under ``raw/<stream>/date=.../hour=.../``.

Each event is archived once (see :mod:`smartcity.storage.archive`); large batches make fewer, larger files.
"""

from smartcity.runtime import Context, Event, cloudevent_function
from smartcity.storage.archive import RawArchive
from smartcity.storage.envelope import AnyStreamEvent, stored_events


@cloudevent_function(data=AnyStreamEvent, batch=1000)
def handle(events: list[Event[AnyStreamEvent]], context: Context) -> None:
    RawArchive(context.objects, context.cache, context.settings).write(stored_events(events))
