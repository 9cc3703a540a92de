"""``smartcity history``: weeks of simulated city history in the stores, in minutes.

``smartcity history generate --days 28`` writes the 5-minute traffic aggregates of every loop and road segment
(``traffic_sensor_5min``, ``traffic_segment_5min``), hourly weather observations and incident reports of the 28
days before ``--end`` (default now) to ``SMARTCITY_DATABASE_URL``; see :mod:`smartcity.simulator.history`.
``--seed`` and ``--incidents-per-day`` default to the simulator's settings (``SMARTCITY_SIMULATOR_SEED``,
``SMARTCITY_SIMULATOR_INCIDENTS_PER_DAY``); the flag wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import typer
from rich.console import Console

from smartcity.settings import get_settings

app = typer.Typer(help="Simulated city history in the stores (for training and dashboards).", no_args_is_help=True)
console = Console(stderr=True)


def parse_end(text: str) -> datetime:
    """An ISO 8601 time with a timezone (``2026-03-30T00:00:00+02:00``, ``2026-03-30T00:00Z``)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected an ISO 8601 time such as 2026-03-30T00:00:00+02:00",
                                 param_hint="--end") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r}: needs a timezone, e.g. 2026-03-30T00:00:00+02:00", param_hint="--end")
    return moment


@app.command()
def generate(
    days: int = typer.Option(..., min=1, help="Days of history, ending at --end."),
    end: Optional[str] = typer.Option(None, help="End of the history, ISO 8601 with a timezone (default: now); "
                                                 "floored to 5 minutes."),
    seed: Optional[int] = typer.Option(None, help="Random seed: same seed, days and end, same rows. "
                                                  "(env SMARTCITY_SIMULATOR_SEED)"),
    incidents_per_day: Optional[float] = typer.Option(None, min=0, help="Random incidents per day. "
                                                                        "(env SMARTCITY_SIMULATOR_INCIDENTS_PER_DAY)"),
) -> None:
    """Simulate DAYS of city traffic, weather and incidents and write them to the database, idempotently."""
    from smartcity.simulator.city import load_city
    from smartcity.simulator.history_store import generate_history
    from smartcity.simulator.simulation import missing_road_data

    missing = missing_road_data(load_city())  # the history is the traffic its loops would have counted
    if missing:
        console.print(f"[red]error:[/] SMARTCITY_CITY_FILE: the city {load_city().extent.name} has no road network "
                      f"the simulator runs ({missing}): history generate needs road segments and traffic loop sites "
                      "(smartcity city build --from-sumo)", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    moment = parse_end(end) if end is not None else None
    summary = generate_history(get_settings(), days, moment, seed, incidents_per_day,
                               progress=lambda message: console.print(message, highlight=False, soft_wrap=True))
    rows = ", ".join(f"{table} {count:,}" for table, count in summary.rows.items())
    console.print(f"wrote {sum(summary.rows.values()):,} rows ({rows}) for {summary.start:%Y-%m-%d %H:%M} .. "
                  f"{summary.end:%Y-%m-%d %H:%M} UTC in {summary.seconds:.1f} s", highlight=False, soft_wrap=True)
