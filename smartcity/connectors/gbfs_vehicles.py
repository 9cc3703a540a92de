"""GBFS free-floating vehicles: 2.3 ``free_bike_status`` (``data.bikes``, ``bike_id``) and 3.0 ``vehicle_status``
(``data.vehicles``, ``vehicle_id``) as ``bike-share-vehicles`` readings.

``vehicle_types`` (when the system publishes it) gives each ``vehicle_type_id`` its ``form_factor`` and
``propulsion_type``. A vehicle docked at a station may have no ``lat``/``lon`` (GBFS requires them only away from
a station): it is placed at its station, from ``station_information``. ``current_range_meters``,
``current_fuel_percent``, ``is_reserved``, ``is_disabled``, ``station_id`` and ``last_reported`` (POSIX seconds in
2.3, RFC 3339 in 3.0) are taken as they are; a field the feed lacks is left out, for ingest to name if the stream
requires it. The vehicle id is sent as the entity id: ingest pseudonymizes it (the stream's descriptor says why).
"""

from __future__ import annotations

from typing import Any

from smartcity.connectors.gbfs_common import load_json, point, timestamp
from smartcity.connectors.polling import MalformedFeed, Reading

TOPIC = "bike-share-vehicles"


def vehicles(url: str, body: bytes) -> tuple[list[dict[str, Any]], Any]:
    """The vehicles of a free_bike_status (2.3) or vehicle_status (3.0) document, and its ``last_updated``."""
    document = load_json(url, body)
    data = document.get("data") if isinstance(document.get("data"), dict) else {}
    name, id_field = ("bikes", "bike_id") if "bikes" in data else ("vehicles", "vehicle_id")
    listed = data.get(name)
    if not isinstance(listed, list) or not all(isinstance(v, dict) and id_field in v for v in listed):
        raise MalformedFeed(url, f"data.{name}", f"not a list of vehicles with a {id_field} (2.3: data.bikes, "
                            "3.0: data.vehicles)", body)
    return [{**vehicle, "vehicle_id": vehicle[id_field]} for vehicle in listed], document.get("last_updated")


def vehicle_types(url: str, body: bytes) -> dict[str, dict[str, Any]]:
    """``vehicle_type_id`` -> its vehicle type, from a vehicle_types document."""
    data = load_json(url, body).get("data")
    listed = data.get("vehicle_types") if isinstance(data, dict) else None
    if not isinstance(listed, list) or not all(isinstance(t, dict) and "vehicle_type_id" in t for t in listed):
        raise MalformedFeed(url, "data.vehicle_types", "not a list of vehicle types with a vehicle_type_id", body)
    return {str(kind["vehicle_type_id"]): kind for kind in listed}


def vehicle_reading(vehicle: dict[str, Any], types: dict[str, dict[str, Any]],
                    stations: dict[str, dict[str, Any]], last_updated: Any) -> Reading:
    """One vehicle's reading; ``stations`` (station_information by id) places a docked vehicle without a position."""
    vehicle_id, type_id = str(vehicle["vehicle_id"]), vehicle.get("vehicle_type_id")
    kind = types.get(str(type_id), {})
    location = point(vehicle) or point(stations.get(str(vehicle.get("station_id")), {}))
    data = {"id": vehicle_id, "dateObserved": timestamp(last_updated), "location": location,
            "vehicleType": type_id, "formFactor": kind.get("form_factor"),
            "propulsionType": kind.get("propulsion_type"), "currentRangeMeters": vehicle.get("current_range_meters"),
            "currentFuelPercent": vehicle.get("current_fuel_percent"), "isReserved": vehicle.get("is_reserved"),
            "isDisabled": vehicle.get("is_disabled"), "stationId": vehicle.get("station_id"),
            "dateLastReported": timestamp(vehicle.get("last_reported"))}
    return Reading(TOPIC, vehicle_id, {name: value for name, value in data.items() if value is not None})
