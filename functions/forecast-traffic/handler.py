"""forecast-traffic: on each closed 5-minute window, score the forecasts that targeted it and issue new ones.

Triggered by Kafka on ``traffic-windows`` (the streaming job announces each sensor window once the watermark has
passed it) and by HTTP (POST a ``city.traffic.window.closed.v1`` CloudEvent to ``/function/forecast-traffic``).
For every target with a promoted model in the registry (segment speed, sensor flow ...), it forecasts P10/P50/P90
at each horizon beside the historical average, stores both in ``traffic_forecasts`` and returns them, published
on ``forecasts``. Promoted versions are picked up within ``SMARTCITY_FORECAST_RELOAD_S`` seconds (30), without a
restart; no torch is imported (ONNX or XGBoost's own format). See :mod:`models.serving`.
"""

from __future__ import annotations

from functools import cache

from cloudevents.core.v1.event import CloudEvent

from smartcity.events.derived import FORECASTS, TrafficWindow
from smartcity.runtime import Context, Event, cloudevent_function


@cache
def service(context: Context):
    from models.registry import Registry
    from models.serving import ForecastService

    return ForecastService(context.database, Registry(context.objects, settings=context.settings), reload_s=context.settings.forecast_reload_s)


@cloudevent_function(data=TrafficWindow, batch=500)
def handle(events: list[Event[TrafficWindow]], context: Context) -> list[CloudEvent]:
    forecasts = service(context).handle([event.data for event in events])
    return [context.new_event(FORECASTS.ce_type, forecast, partitionkey=forecast.entity_id,
                              id=f"{forecast.target}|{forecast.entity_id}|{forecast.origin.isoformat()}|"
                                 f"{forecast.horizon_min}|{forecast.model}")
            for forecast in forecasts]
