"""A city from a GTFS feed alone: the stops' (and shapes') box with a margin as the boundary, a zone grid over
it, the feed's stops and lines as transit, the agency's time zone (``agency.txt`` ``agency_timezone``)."""

from __future__ import annotations

import os
from pathlib import Path

from smartcity.city.files import CityFileError
from smartcity.city.geometry import bbox, widen
from smartcity.city.grid import grid_zones
from smartcity.city.gtfs import GtfsError, load_feed
from smartcity.city.model import Boundary, CityDefinition, ZoneGrid, known_timezone
from smartcity.city.transit import transit_of

MARGIN_M = 500
GRID = 3


def city_from_gtfs(feed_file: Path, out: Path, name: str | None = None, timezone: str | None = None) -> CityDefinition:
    """The city of ``feed_file``, to be saved as ``out`` (the city file names the feed relative to it)."""
    try:
        feed = load_feed(feed_file)
    except GtfsError as error:
        raise CityFileError(str(error)) from None
    if not feed.stops:
        raise CityFileError(f"{feed_file}: stops.txt: no stop with stop_lat and stop_lon")
    where = "--timezone" if timezone else f"{feed_file}: agency.txt: agency_timezone"
    timezone = timezone or feed.timezone
    if not timezone:
        raise CityFileError(f"{where}: missing (or give --timezone)")
    if not known_timezone(timezone):
        raise CityFileError(f"{where}: {timezone!r} is not a known IANA time zone (such as America/Toronto)")
    points = [(s.lon, s.lat) for s in feed.stops.values()]
    points += [(lon, lat) for shape in feed.shapes.values() for lon, lat, _ in shape]
    west, south, east, north = widen(bbox(points), MARGIN_M)
    box = Boundary(west=west, south=south, east=east, north=north)
    base = CityDefinition(name=name or feed_file.stem, timezone=timezone, boundary=box,
                          grid=ZoneGrid(rows=GRID, cols=GRID), zones=grid_zones(box, GRID, GRID))
    gtfs = os.path.relpath(Path(feed_file).resolve(), Path(out).resolve().parent)
    return base.model_copy(update={"transit": transit_of(feed, base.zone_of, gtfs)})
