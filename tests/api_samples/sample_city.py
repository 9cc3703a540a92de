"""A small, fixed sample of the city's data for the API's tests and benchmark.

:func:`seed_sample_city` writes a known set of events (six traffic sensors on three road segments, three buses
on two lines, bike stations, car parks, taxi trips, air-quality hours, two reported incidents) through the real
storage writers: the stream tables, the latest states in the cache and the incident documents; and what the
streaming jobs write, with their sinks: the traffic job's 5-minute windows of the sample's readings
(:mod:`tests.api_samples.sample_streaming`), the anomalies the anomaly job flags in them against a quiet week of
sensor s2 before (its occupancy 0.18 to 0.22: median 0.20, MAD 0.01), and the mobility index of two zones. The
numbers are chosen so the tests can work out every answer by hand (see :class:`SampleCity`).
(:mod:`tests.api_samples.gateway` serves it through the API functions.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from smartcity.backends.cache import Cache
from smartcity.backends.database import Database
from smartcity.city.geometry import bbox
from smartcity.backends.documents import DocumentStore
from smartcity.events import (
    STREAMS,
    AirQualityObserved,
    Alert,
    BikeHireDockingStation,
    CityEvent,
    Location,
    OffStreetParking,
    PublicTransportVehicle,
    TaxiTrip,
    TrafficFlowObserved,
    city,
)
from smartcity.settings import Settings
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.latest_state import LatestState
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import write_rows
from smartcity.storage.timeseries import TimeSeriesWriter
from smartcity.storage.upsert import upsert
from streaming.indices import component_scores, mobility_index
from tests.api_samples.sample_streaming import flag_anomalies, traffic_windows, write_traffic_windows

SOURCE = "/tests/sample-city"
TRAFFIC_STEP = timedelta(minutes=5)
TRAFFIC_STEPS = 24
TRANSPORT_STEP = timedelta(minutes=1)
TRANSPORT_STEPS = 60
AIR_QUALITY_HOURS = 48
# (sensor, segment, lane, zone, speed km/h); the sensor s2 is congested in every third interval and in the last.
SENSORS = (
    ("s1", "A", 0, "Z11", 50.0), ("s2", "A", 1, "Z11", 10.0),
    ("s3", "B", 0, "Z22", 40.0), ("s4", "B", 1, "Z22", 30.0),
    ("s5", "C", 0, "Z33", 60.0), ("s6", "C", 1, "Z33", 70.0),
)
TOPIC_OF_MODEL = {stream.model: topic for topic, stream in STREAMS.items()}
# Sensor s2's occupancy on each of the 7 days before the sample, at the same times (its anomaly baseline).
S2_BASELINE_OCCUPANCY = (0.18, 0.20, 0.22, 0.19, 0.21, 0.20, 0.20)
# Each zone's measures in its newest mobility window, as the mobility job aggregates them from the sample's streams
# (the sensors' mean speed and occupancy, the buses' mean positive delay, the stations' bikes and docks, the car
# parks' spots; no taxi waiting for a pickup, no air-quality station in Z11). The sample's tests work the scores
# and the index out by hand from these.
MOBILITY_MEASURES: dict[str, dict[str, float | None]] = {
    "Z11": {"mean_speed_kmh": 30.0, "mean_occupancy": 0.15, "mean_bus_delay_s": 120.0, "bikes_available": 0,
            "bike_docks": 20, "parking_occupied": 95, "parking_spots": 100, "taxi_waiting_trips": None,
            "mean_caqi": None},
    "Z22": {"mean_speed_kmh": 35.0, "mean_occupancy": 0.10, "mean_bus_delay_s": 0.0, "bikes_available": 5,
            "bike_docks": 20, "parking_occupied": 40, "parking_spots": 100, "taxi_waiting_trips": None,
            "mean_caqi": 30.0},
}
MOBILITY_WINDOWS = 6
BUSES = (("bus-1", "R1", 30), ("bus-2", "R1", 400), ("bus-3", "R2", -120))  # vehicle, line, delay s
STOPS = (("S1", "Z11"), ("S2", "Z12"), ("S3", "Z22"), ("S4", "Z33"))
# trip, pickup zone, fare; the trip t4 is still under way (no fare yet)
TAXI_TRIPS = (("t1", "Z11", 12.5), ("t2", "Z11", 8.0), ("t3", "Z22", 20.0), ("t4", "Z33", None))


def zone_point(zone: str, dx: float = 0.0, dy: float = 0.0) -> Location:
    """A point inside zone ``Z<row><col>``, near its centre (offsets are fractions of the zone's size)."""
    west, south, east, north = bbox(city().zone(zone).polygon)
    return Location.at(west + (0.5 + dx) * (east - west), south + (0.5 + dy) * (north - south))


@dataclass
class SampleCity:
    """What was written, for the tests to check answers against."""

    now: datetime
    traffic_start: datetime
    events: list[StoredEvent] = field(default_factory=list)
    sensor_windows: list[dict[str, Any]] = field(default_factory=list)
    segment_windows: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def of(self, model: type[CityEvent]) -> list[CityEvent]:
        return [stored.event for stored in self.events if isinstance(stored.event, model)]


def _reading(sensor: str, end: datetime, occupancy: float, congested: bool) -> TrafficFlowObserved:
    _, segment, lane, zone, speed = next(entry for entry in SENSORS if entry[0] == sensor)
    return TrafficFlowObserved(
        id=TrafficFlowObserved.make_id(sensor), dateObserved=end, dateObservedFrom=end - TRAFFIC_STEP,
        dateObservedTo=end, location=zone_point(zone, dx=0.1 * lane), refRoadSegment=f"urn:ngsi-ld:RoadSegment:{segment}",
        laneId=lane, zone=zone, intensity=10, intensityPerHour=120.0, occupancy=occupancy,
        averageVehicleSpeed=speed, congested=congested,
    )


def traffic_readings(now: datetime) -> list[CityEvent]:
    """The six sensors' readings, every 5 minutes for two hours up to ``now``."""
    events = []
    for step in range(TRAFFIC_STEPS):
        end = now - (TRAFFIC_STEPS - 1 - step) * TRAFFIC_STEP
        for sensor, *_ in SENSORS:
            congested = sensor == "s2" and (step % 3 == 0 or step == TRAFFIC_STEPS - 1)
            events.append(_reading(sensor, end, 0.6 if congested else 0.2, congested))
    return events


def _s2_baseline(now: datetime) -> list[TrafficFlowObserved]:
    """Sensor s2's quiet readings on each of the 7 days before, from an hour before the sample to an hour after
    its end (so every hour of the day the sample touches has a baseline, whatever the daylight-saving time)."""
    steps = range(-12, TRAFFIC_STEPS + 12)
    return [_reading("s2", now - timedelta(days=day) - (TRAFFIC_STEPS - 1 - step) * TRAFFIC_STEP, occupancy, False)
            for day, occupancy in enumerate(S2_BASELINE_OCCUPANCY, start=1) for step in steps]


def _streaming(database: Database, sample: SampleCity) -> None:
    """What the traffic and anomaly jobs write for the sample's readings (see the module docstring)."""
    readings = sample.of(TrafficFlowObserved)
    sample.sensor_windows, sample.segment_windows = traffic_windows(readings, updated_at=sample.now)
    write_traffic_windows(database, sample.sensor_windows, sample.segment_windows)
    baseline, _ = traffic_windows(_s2_baseline(sample.now), updated_at=sample.now)
    write_traffic_windows(database, baseline, [])
    sample.anomalies, sample.alerts = flag_anomalies(database, sample.sensor_windows, sample.now)


def _transport(now: datetime) -> list[CityEvent]:
    events = []
    for step in range(TRANSPORT_STEPS):
        moment = now - (TRANSPORT_STEPS - 1 - step) * TRANSPORT_STEP
        for number, (vehicle, line, delay) in enumerate(BUSES):
            stop, zone = STOPS[(step // 15 + number) % len(STOPS)]
            events.append(PublicTransportVehicle(
                id=PublicTransportVehicle.make_id(vehicle), dateObserved=moment, vehicleId=vehicle, vehicleType="bus",
                routeId=line, tripId=f"{line}-trip-{number}", stopId=stop, stopSequence=step // 15,
                currentStatus="IN_TRANSIT_TO", delay=delay, location=zone_point(zone), zone=zone, speed=25.0,
                heading=90.0, occupancyStatus="MANY_SEATS_AVAILABLE",
            ))
    return events


def _mobility(now: datetime) -> list[CityEvent]:
    stations = [
        BikeHireDockingStation(
            id=BikeHireDockingStation.make_id(f"b{n}"), dateObserved=now, name=f"Station {n}", location=zone_point(zone),
            zone=zone, totalSlotNumber=20, availableBikeNumber=bikes, freeSlotNumber=20 - bikes, outOfServiceSlotNumber=0,
            isInstalled=True, isRenting=True, isReturning=True, status="working", dateLastReported=now,
        )
        for n, (zone, bikes) in enumerate((("Z11", 0), ("Z22", 5), ("Z33", 12)), start=1)
    ]
    parkings = [
        OffStreetParking(
            id=OffStreetParking.make_id(f"p{n}"), dateObserved=now, name=f"Car park {n}", location=zone_point(zone),
            zone=zone, refRoadSegment="urn:ngsi-ld:RoadSegment:A", totalSpotNumber=100, occupiedSpotNumber=taken,
            availableSpotNumber=100 - taken, occupancy=taken / 100, status=status,
        )
        for n, (zone, taken, status) in enumerate((("Z11", 95, "almostFull"), ("Z22", 40, "open")), start=1)
    ]
    trips = []
    for number, (trip, pickup, fare) in enumerate(TAXI_TRIPS):
        for minutes_ago, status in ((20, "onTrip"), (10, "completed" if fare is not None else "onTrip")):
            trips.append(TaxiTrip(
                id=TaxiTrip.make_id(trip), dateObserved=now - timedelta(minutes=minutes_ago), serviceType="taxi",
                vehicleId=f"taxi-{number}", driverId=f"driver-{number}", tripStatus=status,
                location=zone_point(pickup), zone=pickup, speed=30.0, heading=0.0, pickupZone=pickup, dropoffZone="Z22",
                passengerCount=1, distanceTravelled=1000.0, fare=fare if status == "completed" else None,
            ))
    return stations + parkings + trips


def _air_quality(now: datetime) -> list[CityEvent]:
    """One station, hourly: CAQI 30 every hour except 80 at noon (city time) every other day."""
    events = []
    for hour in range(AIR_QUALITY_HOURS):
        moment = now - timedelta(hours=AIR_QUALITY_HOURS - 1 - hour)
        index = 30
        if moment.hour == 11 and moment.day % 2 == 0:
            index = 80
        events.append(AirQualityObserved(
            id=AirQualityObserved.make_id("aq1"), dateObserved=moment, name="Nippes", location=zone_point("Z22"),
            zone="Z22", no2=20.0, pm10=15.0, pm25=8.0, o3=40.0, co=0.3, airQualityIndex=index,
            airQualityLevel="high" if index >= 75 else "low",
        ))
    return events


def _mobility_index_rows(now: datetime) -> list[dict[str, Any]]:
    """What the streaming mobility job writes to ``mobility_index_5min``: per zone, six windows ending at the last
    5 minutes, from the zone's measures (:data:`MOBILITY_MEASURES`), scored by the job's own formulas
    (:func:`streaming.indices.component_scores`, 0..1) and weighted into the index 0..100
    (:func:`streaming.indices.mobility_index`). The buses' mean delay grows by a minute per window back."""
    last = datetime.fromtimestamp(now.timestamp() // 300 * 300, timezone.utc)
    rows = []
    for zone, measures in MOBILITY_MEASURES.items():
        for back in range(MOBILITY_WINDOWS):
            start = last - (back + 1) * timedelta(minutes=5)
            window = {**measures, "mean_bus_delay_s": measures["mean_bus_delay_s"] + 60.0 * back}
            scores = component_scores(**{("occupancy" if name == "mean_occupancy" else name): value
                                         for name, value in window.items()})
            rows.append({
                "zone_id": zone, "window_start": start, "window_end": start + timedelta(minutes=5),
                "mobility_index": mobility_index(scores), **{f"{name}_score": score for name, score in scores.items()},
                **window, "event_count": 100, "last_event_at": start + timedelta(minutes=4),
                "updated_at": start + timedelta(minutes=5),
            })
    return rows


def _incidents(now: datetime) -> list[CityEvent]:
    def alert(local_id: str, moment: datetime, status: str, severity: str) -> Alert:
        return Alert(
            id=Alert.make_id(local_id), dateObserved=moment, category="traffic", subCategory="carAccident",
            severity=severity, status=status, description=f"{local_id} on segment A", location=zone_point("Z11"),
            zone="Z11", refRoadSegment="urn:ngsi-ld:RoadSegment:A", laneId=0, dateIssued=now - timedelta(minutes=30),
            validFrom=now - timedelta(minutes=30), alertSource="traffic-anomaly-detector",
        )

    return [
        alert("crash-1", now - timedelta(minutes=30), "active", "high"),
        alert("crash-2", now - timedelta(minutes=50), "active", "medium"),
        alert("crash-2", now - timedelta(minutes=20), "cleared", "medium"),
    ]


def seed_sample_city(database: Database, cache: Cache, documents: DocumentStore, settings: Settings,
                     now: datetime | None = None) -> SampleCity:
    """Migrate the database and write the sample through the storage writers; idempotent for one ``now``."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    migrate(database)
    write_rows(database, "routes", [
        {"route_id": "R1", "short_name": "1", "long_name": "Nippes - Ehrenfeld", "route_type": "bus"},
        {"route_id": "R2", "short_name": "2", "long_name": "Nippes - Zentrum", "route_type": "bus"},
    ])
    write_rows(database, "stops", [
        {"stop_id": stop, "name": f"Stop {stop}", "zone_id": zone, "lon": zone_point(zone).lon, "lat": zone_point(zone).lat}
        for stop, zone in STOPS
    ])
    sample = SampleCity(now=now, traffic_start=now - TRAFFIC_STEPS * TRAFFIC_STEP)
    for event in [*traffic_readings(now), *_transport(now), *_mobility(now), *_air_quality(now), *_incidents(now)]:
        stream = TOPIC_OF_MODEL[type(event)]
        event_id = f"{stream}:{event.id}:{event.dateObserved.isoformat()}"
        sample.events.append(StoredEvent(stream, event_id, SOURCE, event))
    TimeSeriesWriter(database).write(sample.events)
    LatestState(cache, settings.latest_state_ttl_s).write(sample.events)
    DocumentWriter(documents).write([e for e in sample.events if e.stream == "incidents"])
    _streaming(database, sample)
    upsert(database, "mobility_index_5min", _mobility_index_rows(now), key=("zone_id", "window_start"))
    return sample
