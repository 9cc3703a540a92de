"""cluster-hotspots: group the last hour's anomalies and active incidents into spatial hotspots.

Triggered by Kafka on ``traffic-windows``: the closed windows are its clock. At most every
``SMARTCITY_HOTSPOT_INTERVAL_S`` seconds of window time (60) it runs DBSCAN in space and time
(``SMARTCITY_HOTSPOT_RADIUS_M``, ``SMARTCITY_HOTSPOT_WINDOW_S``, ``SMARTCITY_HOTSPOT_MIN_POINTS``) over the
windows the detectors flagged and the incidents still active, stores the clusters in ``traffic_hotspots``
(``/v1/incidents/hotspots`` serves the active ones) and publishes on ``hotspots`` each hotspot that appeared or
changed, and each that is over (``cleared``). See :mod:`models.anomaly.hotspot_service`.
"""

from __future__ import annotations

from functools import cache

from cloudevents.core.v1.event import CloudEvent

from smartcity.events.derived import HOTSPOTS, TrafficWindow
from smartcity.runtime import Context, Event, cloudevent_function


@cache
def service(context: Context):
    from models.anomaly.hotspot_service import HotspotOptions, HotspotService

    settings = context.settings
    return HotspotService(context.database, HotspotOptions(
        settings.hotspot_interval_s, settings.hotspot_radius_m, settings.hotspot_window_s, settings.hotspot_min_points))


@cloudevent_function(data=TrafficWindow, batch=500)
def handle(events: list[Event[TrafficWindow]], context: Context) -> list[CloudEvent]:
    from models.anomaly.hotspot_service import event_id

    now = max(event.data.window_end for event in events)
    return [context.new_event(HOTSPOTS.ce_type, hotspot, id=event_id(hotspot), time=hotspot.computed_at,
                              partitionkey=hotspot.id)
            for hotspot in service(context).maybe_run(now)]
