"""detect-anomalies: on each closed 5-minute window, score it with the promoted anomaly detector and report the
unusual ones as incidents.

Triggered by Kafka on ``traffic-windows`` (the streaming job announces each sensor window once the watermark has
passed it) and by HTTP (POST a ``city.traffic.window.closed.v1`` CloudEvent to ``/function/detect-anomalies``).
For every anomaly target with a promoted detector in the registry (``anomaly-sensor``, ``anomaly-segment``), the
window's sensor or road segment is scored from its stored context; every score is stored in
``anomaly_scores``, and a score at or above ``SMARTCITY_ANOMALY_THRESHOLD`` (0.999) is returned as an Alert,
published on ``incidents`` (score, model@version, top contributions). A normal window publishes nothing.
Promoted versions are picked up within ``SMARTCITY_ANOMALY_RELOAD_S`` seconds, without a restart; no torch is
imported. See :mod:`models.anomaly.serving`.
"""

from __future__ import annotations

from functools import cache

from cloudevents.core.v1.event import CloudEvent

from smartcity.events import stream_for_topic
from smartcity.events.derived import TrafficWindow
from smartcity.runtime import Context, Event, cloudevent_function

INCIDENTS = stream_for_topic("incidents")


@cache
def service(context: Context):
    from models.anomaly.catalog import AnomalyRegistry
    from models.anomaly.serving import AnomalyService

    settings = context.settings
    return AnomalyService(context.database, AnomalyRegistry(context.objects, settings=context.settings), threshold=settings.anomaly_threshold,
                          reload_s=settings.anomaly_reload_s)


@cloudevent_function(data=TrafficWindow, batch=500)
def handle(events: list[Event[TrafficWindow]], context: Context) -> list[CloudEvent]:
    alerts = service(context).handle([event.data for event in events])
    return [context.new_event(INCIDENTS.ce_type, alert, id=alert.id, time=alert.dateObserved, partitionkey=alert.id)
            for alert in alerts]
