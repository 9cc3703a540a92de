"""The traffic-sensors stream: per-lane induction-loop flow, occupancy and speed every interval."""

from smartcity.events.traffic import TrafficFlowObserved
from smartcity.streams import Stream

STREAM = Stream(
    topic="traffic-sensors",
    ce_type="city.traffic.flow.observed.v1",
    model=TrafficFlowObserved,
    key_field="id",
    description="Per-lane induction-loop flow, occupancy and speed every interval",
    table="traffic_flow",
    indexes=("entity_id", "segment_id", "zone_id"),
)
