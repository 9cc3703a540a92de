"""The city description and GTFS feed derived from the SUMO network; the GTFS loader; buses on any feed."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartcity.errors import ConfigurationError
from smartcity.events import city
from smartcity.city import DEFAULT_CITY_FILE, save_city
from smartcity.simulator import build_city
from smartcity.simulator.city import GTFS_FILE, load_city
from smartcity.city.gtfs import GtfsError, load_feed
from smartcity.simulator.source import SourceContext
from smartcity.simulator.transit import TransitSource

MONDAY_8 = datetime(2026, 3, 2, 8, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def test_rebuilding_from_the_network_gives_the_committed_files(tmp_path):
    city_data, feed = build_city.build()
    assert save_city(city_data, tmp_path / "city.json").read_text() == DEFAULT_CITY_FILE.read_text(), \
        "run python -m smartcity.simulator.build_city"
    assert feed == GTFS_FILE.read_bytes(), "run python -m smartcity.simulator.build_city"


def test_every_place_lies_in_its_zone_inside_the_city():
    model, extent = load_city(), city()
    places = model.car_parks + model.bike_stations + model.weather_stations + model.air_stations
    assert len(model.car_parks) >= 5 and len(model.bike_stations) == 12 and len(model.segments) > 100
    for place in [*places, *model.segments.values()]:
        assert extent.contains(place.lon, place.lat) and extent.zone_of(place.lon, place.lat) == place.zone
    assert all(p.edge in model.segments for p in places)


def test_the_shipped_feed_loads_through_the_generic_loader():
    feed = load_feed(GTFS_FILE)
    assert set(feed.route_types.values()) == {"bus"}
    weekday, sunday = feed.trips_on(MONDAY_8.date()), feed.trips_on(MONDAY_8.date() + timedelta(days=6))
    assert len(weekday) > len(sunday) > 0
    for trip in weekday:
        assert trip.shape in feed.shapes and [st.sequence for st in trip.stop_times] == sorted(
            st.sequence for st in trip.stop_times)
        assert all(a.departure_s <= b.arrival_s for a, b in zip(trip.stop_times, trip.stop_times[1:]))


def write_feed(path, stops, with_calendar=True):
    """A minimal GTFS zip: one route, one trip 08:00-08:10 over ``stops`` [(id, lon, lat)], no shapes."""
    tables = {
        "stops.txt": [{"stop_id": s, "stop_name": s, "stop_lat": lat, "stop_lon": lon} for s, lon, lat in stops],
        "routes.txt": [{"route_id": "T", "route_short_name": "T", "route_type": "0"}],
        "trips.txt": [{"route_id": "T", "service_id": "ALL", "trip_id": "T1", "block_id": "tram-7"}],
        "stop_times.txt": [{"trip_id": "T1", "arrival_time": f"08:{5 * i:02}:00", "departure_time": f"08:{5 * i:02}:30",
                            "stop_id": s, "stop_sequence": i + 1} for i, (s, _, _) in enumerate(stops)],
    }
    if with_calendar:
        tables["calendar_dates.txt"] = [{"service_id": "ALL", "date": "20260302", "exception_type": "1"}]
    with zipfile.ZipFile(path, "w") as archive:
        for name, rows in tables.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            archive.writestr(name, text.getvalue())
    return path


def test_any_feed_inside_the_city_runs_even_without_shapes(tmp_path):
    feed = write_feed(tmp_path / "tram.zip", [("A", 6.950, 50.965), ("B", 6.955, 50.970), ("C", 6.960, 50.972)])
    source = TransitSource(SourceContext(1, MONDAY_8, load_city()), gtfs=feed)
    events = source.observe(MONDAY_8 + timedelta(minutes=4))
    assert [(e.vehicleId, e.vehicleType, e.tripId, e.stopId) for e in events] == [("tram-7", "tram", "T1", "B")]
    assert events[0].currentStatus in ("IN_TRANSIT_TO", "INCOMING_AT") and 6.950 < events[0].location.lon < 6.955
    assert source.observe(MONDAY_8 + timedelta(hours=2)) == []
    assert TransitSource(SourceContext(1, MONDAY_8, load_city()), gtfs=feed).observe(
        MONDAY_8 + timedelta(days=1, minutes=4)) == []  # the service runs on 2 March only


def test_a_feed_of_another_city_is_refused_with_the_reason(tmp_path):
    paris = write_feed(tmp_path / "paris.zip", [("A", 2.35, 48.85), ("B", 2.36, 48.86)])
    with pytest.raises(ConfigurationError, match="2 of 2 stops lie outside the city"):
        TransitSource(SourceContext(1, MONDAY_8, load_city()), gtfs=paris)


def test_a_broken_feed_names_what_is_missing(tmp_path):
    with pytest.raises(GtfsError, match="needs calendar.txt or calendar_dates.txt"):
        load_feed(write_feed(tmp_path / "nocal.zip", [("A", 6.95, 50.965), ("B", 6.955, 50.97)], with_calendar=False))
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(GtfsError, match="not a readable zip"):
        load_feed(tmp_path / "junk.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("agency.txt", "agency_id\n")
    with pytest.raises(GtfsError, match="missing stops.txt, routes.txt, trips.txt, stop_times.txt"):
        load_feed(tmp_path / "empty.zip")
