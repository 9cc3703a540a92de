"""A city on another continent for the tests: a small GTFS feed of Montréal (America/Toronto), written by the test
itself, and a way to make a city file the configured city for a while (``SMARTCITY_CITY_FILE``)."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smartcity.settings import get_settings

TIMEZONE = "America/Toronto"
# Two lines through downtown Montréal: (stop id, name, lon, lat) in running order.
LINES = {
    "24": [("M1", "Atwater", -73.5860, 45.4895), ("M2", "Guy", -73.5790, 45.4945), ("M3", "Peel", -73.5725, 45.4990),
           ("M4", "McGill", -73.5690, 45.5040), ("M5", "Saint-Laurent", -73.5640, 45.5100)],
    "55": [("S1", "Mont-Royal", -73.5810, 45.5230), ("S2", "Rachel", -73.5770, 45.5170),
           ("M5", "Saint-Laurent", -73.5640, 45.5100), ("S3", "Place-d'Armes", -73.5590, 45.5060)],
}
STOP_MINUTES = 3  # between two stops
HEADWAY_MINUTES = 10  # from 07:00 to 09:00, weekdays


def _csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def montreal_tables(timezone: str | None = TIMEZONE) -> dict[str, list[dict]]:
    """The feed's tables: an agency (with ``timezone``, or none), stops, two routes, trips both ways, a calendar."""
    stops = {stop_id: (name, lon, lat) for line in LINES.values() for stop_id, name, lon, lat in line}
    trips, stop_times = [], []
    for route, line in LINES.items():
        for direction, order in enumerate((line, line[::-1])):
            for start in range(7 * 60, 9 * 60, HEADWAY_MINUTES):
                trip_id = f"{route}-{direction}-{start // 60:02}{start % 60:02}"
                trips.append({"route_id": route, "service_id": "WD", "trip_id": trip_id, "direction_id": direction})
                for sequence, (stop_id, *_rest) in enumerate(order, 1):
                    minute = start + (sequence - 1) * STOP_MINUTES
                    time = f"{minute // 60:02}:{minute % 60:02}:00"
                    stop_times.append({"trip_id": trip_id, "arrival_time": time, "departure_time": time,
                                       "stop_id": stop_id, "stop_sequence": sequence})
    agency = {"agency_id": "STM", "agency_name": "Société de transport de Montréal", "agency_url": "https://stm.invalid"}
    return {
        "agency.txt": [{**agency, "agency_timezone": timezone or ""}],
        "stops.txt": [{"stop_id": s, "stop_name": n, "stop_lat": lat, "stop_lon": lon} for s, (n, lon, lat) in stops.items()],
        "routes.txt": [{"route_id": r, "agency_id": "STM", "route_short_name": r, "route_long_name": f"Ligne {r}",
                        "route_type": 3} for r in LINES],
        "trips.txt": trips,
        "stop_times.txt": stop_times,
        "calendar.txt": [{"service_id": "WD", "monday": 1, "tuesday": 1, "wednesday": 1, "thursday": 1, "friday": 1,
                          "saturday": 0, "sunday": 0, "start_date": "20260101", "end_date": "20261231"}],
    }


def write_feed(path: Path, tables: dict[str, list[dict]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, rows in tables.items():
            archive.writestr(name, _csv(rows))
    return path


def montreal_feed(path: Path, timezone: str | None = TIMEZONE) -> Path:
    return write_feed(path, montreal_tables(timezone))


@contextmanager
def configured_city(city_file: Path) -> Iterator[Path]:
    """``city_file`` is the configured city until the block ends; then the setting is as it was."""
    before = os.environ.get("SMARTCITY_CITY_FILE")
    os.environ["SMARTCITY_CITY_FILE"] = str(city_file)
    get_settings.cache_clear()
    try:
        yield city_file
    finally:
        if before is None:
            os.environ.pop("SMARTCITY_CITY_FILE", None)
        else:
            os.environ["SMARTCITY_CITY_FILE"] = before
        get_settings.cache_clear()
