"""store-latest: the latest state of each sensor, vehicle, station, parking and incident into the cache.

Keys ``latest:<stream>:<entity id>`` with a TTL (``SMARTCITY_LATEST_STATE_TTL_S``); the newer event wins, so a
late or redelivered one changes nothing. See :mod:`smartcity.storage.latest_state`.
"""

from smartcity.runtime import Context, Event, cloudevent_function
from smartcity.storage.envelope import AnyStreamEvent, stored_events
from smartcity.storage.latest_state import LatestState


@cloudevent_function(data=AnyStreamEvent, batch=500)
def handle(events: list[Event[AnyStreamEvent]], context: Context) -> None:
    LatestState(context.cache, context.settings.latest_state_ttl_s).write(stored_events(events))
