"""``smartcity simulate``: run the simulated city and publish its eight streams (or replay a recording).

Every option has an environment variable (``SMARTCITY_SIMULATOR_<OPTION>``, see ``smartcity settings``); the
command-line flag wins over the variable, which wins over the default.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from smartcity.errors import ConfigurationError
from smartcity.events import STREAMS, TOPICS
from smartcity.settings import Settings, get_settings

app = typer.Typer(help="Run the simulated city and publish its events.")
console = Console(stderr=True)


def parse_duration(text: str) -> float:
    """``300``, ``300s``, ``90m``, ``2h``, ``1d`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r}: expected a number with an optional unit s, m, h or d", param_hint="--duration")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _pick(flag, setting):
    return flag if flag is not None else setting


@app.callback(invoke_without_command=True)
def simulate(
    speed: Optional[float] = typer.Option(None, min=0, help="City seconds per wall second; 0 = as fast as possible. (env SMARTCITY_SIMULATOR_SPEED)"),
    sensors: Optional[int] = typer.Option(None, min=1, help="Traffic sensors; more than the network's lanes replicates them (scale-out). (env SMARTCITY_SIMULATOR_SENSORS)"),
    rate_cap: Optional[float] = typer.Option(None, min=0, help="Most events per wall second; the city slows down, nothing is dropped. (env SMARTCITY_SIMULATOR_RATE_CAP)"),
    seed: Optional[int] = typer.Option(None, help="Random seed: same seed and start, same events. (env SMARTCITY_SIMULATOR_SEED)"),
    start: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"], help="City time to start at, with a timezone (default: now). (env SMARTCITY_SIMULATOR_START)"),
    duration: Optional[str] = typer.Option(None, help="City time to run: 300s, 90m, 2h (default: until stopped). (env SMARTCITY_SIMULATOR_DURATION)"),
    sink: Optional[str] = typer.Option(None, help="bus (SMARTCITY_BUS_URL) or http (the ingest functions). (env SMARTCITY_SIMULATOR_SINK)"),
    url: Optional[str] = typer.Option(None, help="HTTP sink URL; {topic} is replaced. (env SMARTCITY_SIMULATOR_URL)"),
    body_format: Optional[str] = typer.Option(None, "--format", help="HTTP body: json or csv. (env SMARTCITY_SIMULATOR_FORMAT)"),
    streams: Optional[str] = typer.Option(None, help=f"Comma-separated topics (default all: {','.join(TOPICS)}). (env SMARTCITY_SIMULATOR_STREAMS)"),
    incident: Optional[list[str]] = typer.Option(None, help="Inject an incident: kind=accident|closure,at=HH:MM|+10m,minutes=20[,lane=<SUMO lane>]; repeatable. (env SMARTCITY_SIMULATOR_INCIDENTS, ';'-separated)"),
    incidents_per_day: Optional[float] = typer.Option(None, min=0, help="Random incidents per city day. (env SMARTCITY_SIMULATOR_INCIDENTS_PER_DAY)"),
    gtfs: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="GTFS zip for the buses (default: the city's own feed). (env SMARTCITY_SIMULATOR_GTFS)"),
    record: Optional[Path] = typer.Option(None, dir_okay=False, help="Also write every event to this JSON-lines file. (env SMARTCITY_SIMULATOR_RECORD)"),
    replay: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="Publish this recording instead of simulating. (env SMARTCITY_SIMULATOR_REPLAY)"),
) -> None:
    """Simulate the city (SUMO traffic, buses, taxis, parking, bikes, incidents, weather, air) and publish it."""
    from smartcity.simulator.clock import CityClock, RateLimiter
    from smartcity.simulator.incidents import parse_incident
    from smartcity.simulator.recording import Recorder, read_recording
    from smartcity.simulator.runner import publish
    from smartcity.simulator.simulation import CitySimulation, SimulatorOptions

    settings = get_settings()
    speed = _pick(speed, settings.simulator_speed)
    start = _pick(start, settings.simulator_start) or datetime.now(timezone.utc).astimezone()
    if start.tzinfo is None:
        raise typer.BadParameter("needs a timezone, e.g. 2026-03-02T07:30:00+01:00", param_hint="--start")
    duration_text = _pick(duration, settings.simulator_duration)
    topics = tuple(t.strip() for t in _pick(streams, settings.simulator_streams or ",".join(TOPICS)).split(",") if t.strip())
    incident_texts = incident or [t for t in (settings.simulator_incidents or "").split(";") if t.strip()]
    try:
        plans = tuple(parse_incident(text, start) for text in incident_texts)
        options = SimulatorOptions(
            start=start, seed=_pick(seed, settings.simulator_seed), sensors=_pick(sensors, settings.simulator_sensors),
            streams=topics, incidents=plans,
            incidents_per_day=_pick(incidents_per_day, settings.simulator_incidents_per_day),
            gtfs=_pick(gtfs, settings.simulator_gtfs),
            duration_s=parse_duration(duration_text) if duration_text else None)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    replay_path = _pick(replay, settings.simulator_replay)
    personal = bool(replay_path) or any(STREAMS[t].personal_fields for t in topics if t in STREAMS)
    try:
        destination = open_sink(settings, _pick(sink, settings.simulator_sink), _pick(url, settings.simulator_url),
                                _pick(body_format, settings.simulator_format), personal)
    except ConfigurationError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    record_path = _pick(record, settings.simulator_record)
    recorder = Recorder(record_path) if record_path else None
    limiter = RateLimiter(_pick(rate_cap, settings.simulator_rate_cap))
    progress = _progress()
    try:
        if replay_path:
            ticks = read_recording(replay_path)
            first = next(ticks, None)
            if first is None:
                raise typer.BadParameter(f"{replay_path} holds no event", param_hint="--replay")
            report = publish(itertools.chain([first], ticks), destination, CityClock(first.time, speed), limiter,
                             recorder, progress)
        else:
            with CitySimulation(options) as simulation:
                report = publish(simulation.ticks(), destination, CityClock(simulation.start, speed), limiter,
                                 recorder, progress)
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except ConfigurationError as error:  # a stream or feed the configured city cannot give
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    finally:
        destination.close()
        if recorder is not None:
            recorder.close()
    console.print(f"published {report.events} events in {report.wall_s:.1f} s ({report.events_per_s:.0f}/s), "
                  f"{report.city_s:.0f} s of city time, worst lag {report.max_lag_s:.1f} s: {dict(report.by_topic)}")


def open_sink(settings: Settings, kind: str, url: str | None, body_format: str, personal: bool = True):
    """The sink named ``kind``: ``bus`` (settings.bus_url) or ``http`` (``url`` or the local gateway, with the
    API key of the secret file ``ingest-api-key`` when there is one: `smartcity demo` writes its simulator's there).

    With ``personal`` streams the bus sink needs the pseudonym key: a missing key fails here, before the run.
    """
    from smartcity.ingest_client import client_api_key
    from smartcity.simulator.sinks import BusSink, HttpSink

    if kind == "bus":
        from smartcity.backends.bus import open_bus
        from smartcity.privacy import Pseudonymizer

        pseudonymizer = functools.cache(lambda: Pseudonymizer.from_settings(settings))
        if personal:
            pseudonymizer()
        return BusSink(open_bus(settings.bus_url), settings.topic_partitions, pseudonymizer)
    if kind == "http":
        if body_format not in ("json", "csv"):
            raise typer.BadParameter(f"{body_format!r}: expected json or csv", param_hint="--format")
        return HttpSink(url or f"http://127.0.0.1:{settings.gateway_port}/function/ingest-{{topic}}", body_format,
                        api_key=client_api_key(settings))
    raise typer.BadParameter(f"{kind!r}: expected bus or http", param_hint="--sink")


def _progress():
    """A status line at most once a wall second: city time, events so far, their rate, the worst lag."""
    started = time.monotonic()
    shown = [started]

    def show(tick, report) -> None:
        now = time.monotonic()
        if now - shown[0] >= 1.0:
            shown[0] = now
            console.print(f"{tick.time:%Y-%m-%d %H:%M:%S%z}  {report.events} events "
                          f"({report.events / (now - started):.0f}/s), worst lag {report.max_lag_s:.1f} s",
                          highlight=False)

    return show
