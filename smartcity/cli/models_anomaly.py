"""``smartcity models anomaly-scores``: score any CSV of series for anomalies, strictly causally.

The input has columns ``timestamp,value`` (one series) or ``series_id,timestamp,value`` (other columns are kept
and ignored: no label is read); the output is the same rows, same order and text, plus ``anomaly_score`` in
[0, 1]. Each series is scored by the self-learning detector of :mod:`models.anomaly.online`, from nothing: the
score of a row depends only on the rows of its series up to it. Bad input (a missing column, an unparsable
timestamp or value, an unknown model) ends with ``error: <field>: <reason>`` on stderr and exit code 2.
"""

from __future__ import annotations

import csv
from pathlib import Path

import typer


def anomaly_scores(
    input_file: Path = typer.Option(..., "--input", dir_okay=False, help="CSV with columns series_id (optional), timestamp, value; rows in time order per series."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="CSV to write: the input's rows plus anomaly_score (0..1)."),
    model: str = typer.Option("ensemble", help="ensemble (robust z, change, kNN and Isolation Forest), zscore, isolation-forest or autoencoder (needs torch)."),
    timezone: str | None = typer.Option(None, help="The series' time zone: of timestamps without an offset, and of the time-of-day profiles. Default: UTC, or the timestamps' wall clock where their UTC offsets change. Give it for data in UTC from a place whose clocks change: its daily rhythm follows them."),
    seed: int = typer.Option(0, help="Random seed of the learned scorers: same seed and file, same scores."),
) -> None:
    """Score every row of a CSV of series: anomaly_score in [0, 1], each row from the rows up to it only."""
    from models.anomaly.online_table import check_model, read_table, score_table
    from models.panel import BadSeriesInput, timezone_note

    try:
        check_model(model)
        fields, rows = _read_csv(input_file)
        table = read_table(fields, rows, timezone)
        at = [name.strip() for name in fields].index("timestamp")  # read_table found it, spaces around or not
        note = timezone_note((row[at] for row in rows), timezone)
        if note:
            typer.echo(note, err=True)
        scores = score_table(table, model, seed, timezone or "UTC")
        try:
            handle = out.open("w", newline="")
        except OSError as error:
            raise BadSeriesInput("out", f"cannot write {out}: {error.strerror}") from None
    except BadSeriesInput as error:
        typer.echo(f"error: {error.field}: {error.reason}", err=True)
        raise typer.Exit(2) from None
    with handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*fields, "anomaly_score"])
        writer.writerows([*row, f"{score:.6f}"] for row, score in zip(rows, scores))
    typer.echo(f"wrote {out}: {len(rows)} rows", err=True)


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file, as text; blank lines are skipped."""
    from models.panel import BadSeriesInput

    if not path.is_file():
        raise BadSeriesInput("input", f"no such file: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = [row for row in csv.reader(handle) if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise BadSeriesInput("input", f"not a readable CSV file: {error}") from None
    if not lines:
        raise BadSeriesInput("input", "empty file: no header")
    return lines[0], lines[1:]
