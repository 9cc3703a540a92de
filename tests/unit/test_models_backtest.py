"""``smartcity models backtest`` on small CSV files: the forecasts it writes, the errors it refuses input with
(exit code 2, naming what is wrong), and the metrics its report is made of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from models.metrics import compare, score, series_mae
from models.panel import Panel
from smartcity.cli.models_backtest import backtest
from tests.models_helpers import panel_frame, synthetic_panel

app = typer.Typer()
app.command()(backtest)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    """3 series, 10 days of 30-minute values, a few of them missing."""
    frame = panel_frame(synthetic_panel(n_series=3, days=10, step_min=30, seed=4))
    frame = frame.drop(frame.index[[5, 600, 1000]])
    path = tmp_path_factory.mktemp("backtest") / "series.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_forecasts_of_every_observed_test_timestamp_horizon_and_model(series_csv, tmp_path):
    out = tmp_path / "forecasts.csv"
    result = run("--input", str(series_csv), "--horizons", "30,60", "--model", "historical-average,persistence,xgboost",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    forecasts = pd.read_csv(out, dtype={"origin": str})
    assert list(forecasts.columns) == ["series_id", "origin", "horizon_min", "model", "p10", "p50", "p90"]
    data = pd.read_csv(series_csv, dtype={"timestamp": str})
    test = data[data["timestamp"] >= "2024-01-08"]  # 10 days: the first 7 train
    assert len(forecasts) == len(test) * 2 * 3
    assert set(forecasts["origin"]) == set(test["timestamp"])  # the input's own timestamps, 'Z' kept
    assert set(forecasts["model"]) == {"historical-average", "persistence", "xgboost"}
    assert forecasts[["p10", "p50", "p90"]].notna().all().all()
    assert ((forecasts["p10"] <= forecasts["p50"]) & (forecasts["p50"] <= forecasts["p90"])).all()
    assert "MAE vs historical-average" in result.output and "xgboost: historical average kept for" in result.output


def test_naive_timestamps_come_back_as_the_same_wall_clock_text(tmp_path):
    frame = panel_frame(synthetic_panel(n_series=1, days=5, step_min=60, seed=1)).drop(columns="series_id")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.strftime("%Y-%m-%d %H:%M")
    frame.to_csv(tmp_path / "naive.csv", index=False)
    out = tmp_path / "forecasts.csv"
    result = run("--input", str(tmp_path / "naive.csv"), "--horizons", "60", "--model", "persistence",
                 "--timezone", "Europe/Paris", "--out", str(out))
    assert result.exit_code == 0, result.output
    forecasts = pd.read_csv(out, dtype={"origin": str, "series_id": str})
    assert forecasts["origin"].iloc[0] == "2024-01-04 00:00" and set(forecasts["series_id"]) == {"series"}
    assert len(forecasts) == 48  # 5 days: 3 train (70 % of 5, rounded down), every hour of the last 2 is an origin


def test_timestamps_with_offsets_and_no_time_zone_get_a_note_that_the_profiles_follow_utc(series_csv, tmp_path):
    """The series' own clock is not in a UTC timestamp: a place with daylight saving time needs --timezone."""
    naive = pd.read_csv(series_csv, dtype={"timestamp": str})
    naive["timestamp"] = naive["timestamp"].str.removesuffix("Z")
    naive.to_csv(tmp_path / "naive.csv", index=False)
    options = ("--horizons", "30", "--model", "persistence", "--out", str(tmp_path / "forecasts.csv"))
    noted = run("--input", str(series_csv), *options)
    assert noted.exit_code == 0 and "note: timezone: not given, so the time-of-day profiles follow UTC" in noted.output
    for given in (run("--input", str(series_csv), "--timezone", "Europe/Paris", *options),
                  run("--input", str(tmp_path / "naive.csv"), *options)):  # wall-clock times: UTC keeps them as such
        assert given.exit_code == 0, given.output
        assert "note: timezone" not in given.output


def test_timestamps_whose_offsets_change_are_local_times_and_the_profiles_follow_their_wall_clock(tmp_path):
    """Written with Paris' offsets across its clock change (+01:00, then +02:00): without --timezone the profiles
    follow the timestamps' wall clock, which is Paris' own, so the historical average is the one Paris' zone gives."""
    times = pd.date_range("2026-03-20", "2026-04-03", freq="h", tz="Europe/Paris", inclusive="left")
    hours = np.asarray(times.hour)
    values = 100 + 50 * np.sin(2 * np.pi * hours / 24) + np.random.default_rng(2).normal(0, 3, len(times))
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in times], "value": values.round(1)})
    frame.to_csv(tmp_path / "paris.csv", index=False)
    forecasts = {}
    for name, options in (("wall clock", ()), ("zone", ("--timezone", "Europe/Paris"))):
        out = tmp_path / f"{name}.csv"
        result = run("--input", str(tmp_path / "paris.csv"), "--horizons", "60", "--model", "historical-average",
                     "--out", str(out), *options)
        assert result.exit_code == 0, result.output
        assert ("offsets change (+01:00, +02:00)" in result.output) == (name == "wall clock")
        forecasts[name] = pd.read_csv(out, dtype={"origin": str}).set_index("origin")["p50"]
    assert len(forecasts["wall clock"]) == len(forecasts["zone"]) > 24
    wall, zone = forecasts["wall clock"].align(forecasts["zone"], join="inner")
    assert len(wall) == len(forecasts["zone"])  # the same origins
    same = np.isclose(wall.to_numpy(), zone.to_numpy())
    # but one: an hour after 01:00 is 03:00 in Paris that night, and 02:00 on a wall clock that does not skip it
    assert list(wall.index[~same]) == ["2026-03-29T01:00:00+01:00"]
    utc = frame.assign(timestamp=[t.tz_convert("UTC").isoformat() for t in times])
    utc.to_csv(tmp_path / "utc.csv", index=False)  # the same instants in UTC: the profiles follow UTC
    result = run("--input", str(tmp_path / "utc.csv"), "--horizons", "60", "--model", "historical-average",
                 "--out", str(tmp_path / "utc-forecasts.csv"))
    assert result.exit_code == 0 and "the time-of-day profiles follow UTC" in result.output
    in_utc = pd.read_csv(tmp_path / "utc-forecasts.csv").set_index("origin")["p50"]
    in_utc.index = pd.to_datetime(in_utc.index, utc=True)
    zone.index = pd.to_datetime(zone.index, utc=True)
    in_utc, zone = in_utc.align(zone, join="inner")
    assert len(zone) > 24 and not np.allclose(in_utc.to_numpy(), zone.to_numpy())


@pytest.mark.parametrize(("edit", "options", "field"), [
    (lambda f: f.drop(columns="value"), (), "value: missing column"),
    (lambda f: f.assign(timestamp=f["timestamp"].where(f.index != 7, "yesterday noon")), (), "timestamp: row"),
    (lambda f: f[f["timestamp"] < "2024-01-03"], (), "timestamp: too little data"),
    (lambda f: f, ("--horizons", "45"), "horizons: 45 min"),
    (lambda f: f, ("--model", "prophet"), "model: unknown model 'prophet'"),
    (lambda f: f, ("--train-fraction", "1.5"), "train-fraction"),
    (lambda f: f, ("--timezone", "Mars/Olympus"), "timezone"),
], ids=["missing column", "unparsable timestamp", "too little data", "horizon off the interval", "unknown model",
        "train fraction", "time zone"])
def test_bad_input_is_refused_naming_what_is_wrong(series_csv, tmp_path, edit, options, field):
    edit(pd.read_csv(series_csv, dtype={"timestamp": str})).to_csv(tmp_path / "bad.csv", index=False)
    result = run("--input", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out.csv"), "--horizons", "30,60",
                 "--model", "persistence", *options)
    assert result.exit_code == 2, result.output
    assert f"error: {field}" in result.output


def test_a_missing_input_file_is_refused(tmp_path):
    result = run("--input", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code == 2 and "error: input: no such file" in result.output


def test_scores_by_hand():
    panel = Panel(["a"], pd.Timestamp("2024-01-01", tz="UTC"), 60, np.array([[0.0, 10.0, 20.0, 0.0, np.nan]]))
    forecasts = np.array([[[[9.0, 10.0, 11.0]], [[10.0, 12.0, 14.0]], [[1.0, 2.0, 3.0]], [[0.0, 5.0, 9.0]]]])
    [row] = score(panel, np.arange(4), forecasts, [60])
    assert row["n"] == 3  # the last origin's actual is missing
    assert row["mae"] == pytest.approx((0 + 8 + 2) / 3)
    assert row["rmse"] == pytest.approx(np.sqrt((0 + 64 + 4) / 3))
    assert row["mape"] == pytest.approx((0 + 40) / 2)  # the actual 0 is left out
    assert row["coverage"] == pytest.approx(1 / 3)
    pinball = lambda y, q: np.mean([max(t * (y - f), (t - 1) * (y - f)) for t, f in zip((0.1, 0.5, 0.9), q)])
    assert row["pinball"] == pytest.approx(np.mean([pinball(10, (9, 10, 11)), pinball(20, (10, 12, 14)),
                                                    pinball(0, (1, 2, 3))]))
    assert series_mae(np.array([[[10.0], [np.nan]]]), forecasts[:, :2]) == pytest.approx([0.0])
    table = compare({"historical-average": [{**row, "mae": 4.0}], "xgboost": [row]})
    assert "xgboost" in table and "+16.7%" in table
