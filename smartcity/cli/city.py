"""``smartcity city``: build a city file (from a SUMO network, a GTFS feed alone, or GeoJSON zones and segments)
and show the configured one. Bad input exits with 2 and a message naming the file and field."""

from __future__ import annotations

from pathlib import Path

import typer

from smartcity.city import CityDefinition, CityFileError, configured_city_file, read_city, save_city
from smartcity.extras import MissingExtra

app = typer.Typer(help="The city the platform serves: build a city file, show one.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def build(
    out: Path = typer.Option(..., "--out", help="The city file to write (JSON)."),
    from_sumo: Path | None = typer.Option(None, "--from-sumo", help="A SUMO network (.net.xml)."),
    from_gtfs: Path | None = typer.Option(None, "--from-gtfs", help="A GTFS feed (zip): stops, lines, time zone."),
    from_geojson: Path | None = typer.Option(None, "--from-geojson", help="Zones: a GeoJSON FeatureCollection."),
    segments: Path | None = typer.Option(None, "--segments", help="With --from-geojson: road segments (LineStrings)."),
    name: str | None = typer.Option(None, "--name", help="The city's name (default: the input file's name)."),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA time zone (default from GTFS: agency.txt)."),
) -> None:
    """Make a city file from exactly one source; point SMARTCITY_CITY_FILE at it."""
    sources = [flag for flag, value in (("--from-sumo", from_sumo), ("--from-gtfs", from_gtfs),
                                        ("--from-geojson", from_geojson)) if value is not None]
    if len(sources) != 1:
        raise _fail(f"give exactly one of --from-sumo, --from-gtfs, --from-geojson (got {', '.join(sources) or 'none'})")
    if segments is not None and from_geojson is None:
        raise _fail("--segments: only with --from-geojson")
    try:
        city = _build(out, from_sumo, from_gtfs, from_geojson, segments, name, timezone)
    except (CityFileError, MissingExtra) as error:
        raise _fail(str(error)) from None
    if from_sumo is None:  # the SUMO path writes its city and feed itself
        save_city(city, out)
    typer.echo(f"wrote {out}: {summary(city)}")


def _build(out: Path, from_sumo: Path | None, from_gtfs: Path | None, from_geojson: Path | None,
           segments: Path | None, name: str | None, timezone: str | None) -> CityDefinition:
    if from_gtfs is not None:
        from smartcity.city.from_gtfs import city_from_gtfs

        return city_from_gtfs(from_gtfs, out, name, timezone)
    if from_geojson is not None:
        from smartcity.city.from_geojson import city_from_geojson

        return city_from_geojson(from_geojson, segments, name, timezone)
    if not timezone:
        raise CityFileError("--timezone: required with --from-sumo (a SUMO network carries no time zone)")
    if not from_sumo.is_file():
        raise CityFileError(f"{from_sumo}: no such SUMO network file")
    from smartcity.simulator import build_city

    return build_city.write(from_sumo, out, name or from_sumo.name.split(".")[0], timezone)


def summary(city: CityDefinition) -> str:
    sites = city.sites
    return (f"{city.name} ({city.timezone}), {len(city.zones)} zones, {len(city.segments)} road segments, "
            f"{len(sites.traffic_loops)} traffic loops, {len(sites.car_parks)} car parks, {len(sites.bike_stations)} bike stations, "
            f"{len(sites.weather_stations) + len(sites.air_quality_stations)} measuring stations, "
            f"{len(city.transit.stops)} transit stops on {len(city.transit.lines)} lines")


@app.command()
def show(file: Path | None = typer.Option(None, "--file", help="A city file (default: SMARTCITY_CITY_FILE).")) -> None:
    """Print a summary of the configured city (or of FILE)."""
    path = file or configured_city_file()
    try:
        city = read_city(path)
    except CityFileError as error:
        raise _fail(str(error)) from None
    box = city.boundary
    typer.echo(f"{path}\n{summary(city)}")
    typer.echo(f"boundary: west {box.west}, south {box.south}, east {box.east}, north {box.north}"
               + (" (and a polygon)" if box.polygon else ""))
    grid = f"a {city.grid.rows} x {city.grid.cols} grid" if city.grid else "polygons"
    typer.echo(f"zones ({grid}): {', '.join(f'{z.id} {z.name}' for z in city.zones)}")
    typer.echo(f"road network: {city.network or 'none'}; transit feed: {city.gtfs_file or 'none'}")
