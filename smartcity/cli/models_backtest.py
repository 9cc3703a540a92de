"""``smartcity models backtest``: score the forecasting models on a city's own CSV of series.

Bad input (a missing column, an unparsable timestamp, too little data, a horizon that is not a multiple of the
data's interval, an unknown model) ends with ``error: <field>: <reason>`` on stderr and exit code 2. pandas,
xgboost and the models are imported inside the command: ``smartcity --help`` stays fast and never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import typer


def backtest(
    input_file: Path = typer.Option(..., "--input", dir_okay=False, help="CSV with columns series_id (optional), timestamp, value: one row per series per interval (detected; gaps allowed)."),
    horizons: str = typer.Option("15,30,60", help="Forecast horizons in minutes, comma-separated; each a multiple of the data's interval."),
    train_fraction: float = typer.Option(0.7, help="Share of the calendar days, the first ones, that trains; every observed timestamp after them is a forecast origin."),
    model: str = typer.Option("all", help="A model name, a comma-separated list, or all (every model of the catalog)."),
    seed: int = typer.Option(0, help="Random seed of the learned models: same seed and data, same forecasts."),
    timezone: str | None = typer.Option(None, help="The series' time zone: of timestamps without an offset, and of the time-of-day profiles. Default: UTC, or the timestamps' wall clock where their UTC offsets change. Give it for data in UTC from a place whose clocks change: its daily rhythm follows them."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Forecasts CSV to write: series_id,origin,horizon_min,model,p10,p50,p90."),
) -> None:
    """Train every model on the first days of a CSV of series and forecast every later timestamp; print the
    scores beside the historical average and persistence."""
    from tqdm import tqdm

    from models.backtest import forecasters, parse_horizons, phase_count, read_series_csv, run_backtest, summary
    from models.backtest import train_end_of
    from models.catalog import model_names
    from models.panel import BadSeriesInput, timezone_note

    try:
        if not input_file.is_file():
            raise BadSeriesInput("input", f"no such file: {input_file}")
        names, minutes = model_names(model), parse_horizons(horizons)
        data = read_series_csv(input_file, timezone)
        note = timezone_note(data.observed["label"], timezone)
        if note:
            typer.echo(note, err=True)
        train_end = train_end_of(data.panel, minutes, train_fraction)
        models = forecasters(names, minutes, seed)
        try:
            handle = out.open("w", newline="")
        except OSError as error:
            raise BadSeriesInput("out", f"cannot write {out}: {error.strerror}") from None
        with handle, tqdm(total=phase_count(names), unit="phase") as bar:
            report = run_backtest(data, models, train_end, handle,
                                  progress=lambda phase, done: bar.update(1) if done else bar.set_postfix_str(phase))
    except BadSeriesInput as error:
        typer.echo(f"error: {error.field}: {error.reason}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary(data, report, names), err=True)
    typer.echo(f"wrote {out}", err=True)
