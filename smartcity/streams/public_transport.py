"""The public-transport stream: bus positions on their GTFS trips, with delays."""

from smartcity.events.transport import PublicTransportVehicle
from smartcity.streams import Stream

STREAM = Stream(
    topic="public-transport",
    ce_type="city.transport.vehicle.position.v1",
    model=PublicTransportVehicle,
    key_field="vehicleId",
    description="Bus positions on their GTFS trips, with delays",
    table="transport_positions",
    indexes=("route_id", "stop_id", "vehicle_id", "zone_id"),
)
