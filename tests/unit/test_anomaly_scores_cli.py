"""``smartcity models anomaly-scores``: strictly causal scores in [0, 1] of any series, the input's rows kept as
they were, an obvious spike flagged and normal rows not, each model, and bad input named with exit code 2."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from smartcity.cli.models_anomaly import anomaly_scores

app = typer.Typer()
app.command()(anomaly_scores)
ROWS = 1500
SPIKE = 1200
#: "flagged" for the self-learning scorer of one series: stranger than 99 % of what the series did before. The
#: platform's alert threshold (models.anomaly.base.FLAGGED, 0.999) is an alert budget for a city of many
#: segments; 1,200 rows of one series can only rank a row above 1 - 1/1200 through the calibration's tail.
FLAGGED = 0.99


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def traffic_series(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A speed sensor: irregular 4-10 minute steps, a morning and an evening dip on weekdays, noise, and one
    obvious drop (to a fifth) at row SPIKE."""
    rng = np.random.default_rng(seed)
    times = pd.Timestamp("2015-09-07 00:00") + pd.to_timedelta(np.cumsum(rng.choice([4, 5, 5, 5, 6, 10], rows)), "min")
    hours = np.asarray(times.hour + times.minute / 60)
    weekday = np.asarray(times.day_of_week < 5)
    speed = 65 - weekday * (18 * np.exp(-(hours - 8) ** 2 / 2) + 12 * np.exp(-(hours - 17.5) ** 2 / 3))
    speed = np.round(speed + rng.normal(0, 2.5, rows), 1)
    if rows > SPIKE:
        speed[SPIKE] = round(speed[SPIKE] / 5, 1)
    return pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"), "value": speed})


def scores_of(path) -> np.ndarray:
    return pd.read_csv(path)["anomaly_score"].to_numpy()


@pytest.fixture(scope="module")
def series_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anomaly")
    traffic_series().to_csv(folder / "series.csv", index=False)
    return folder / "series.csv"


@pytest.fixture(scope="module")
def ensemble_scores(series_file):
    out = series_file.with_name("scores.csv")
    result = run("--input", str(series_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_output_is_the_input_rows_plus_a_score_in_the_unit_interval(series_file, ensemble_scores):
    with series_file.open() as handle, ensemble_scores.open() as scored:
        given, got = list(csv.reader(handle)), list(csv.reader(scored))
    assert got[0] == [*given[0], "anomaly_score"]
    assert [row[:-1] for row in got[1:]] == given[1:]
    scores = scores_of(ensemble_scores)
    assert len(scores) == ROWS and np.all((scores >= 0) & (scores <= 1))


def test_an_obvious_drop_is_flagged_and_normal_rows_are_not(ensemble_scores):
    scores = scores_of(ensemble_scores)
    assert scores[SPIKE] >= FLAGGED
    normal = np.delete(scores, range(SPIKE, SPIKE + 4))
    assert (normal >= FLAGGED).mean() < 0.02


@pytest.mark.parametrize("cut", [100, 777, SPIKE + 1])
def test_the_scores_of_a_file_cut_at_row_t_are_the_first_t_scores(series_file, ensemble_scores, tmp_path, cut):
    part = tmp_path / "part.csv"
    pd.read_csv(series_file, dtype=str).iloc[:cut].to_csv(part, index=False)
    result = run("--input", str(part), "--out", str(tmp_path / "part_scores.csv"))
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(scores_of(tmp_path / "part_scores.csv"), scores_of(ensemble_scores)[:cut])


def test_series_are_scored_each_on_its_own_and_rows_keep_their_order(tmp_path):
    one, two = traffic_series(600, seed=1), traffic_series(600, seed=2)
    one["value"], two["value"] = one["value"] * 10, two["value"]
    both = pd.concat([one.assign(series_id="a"), two.assign(series_id="b")]).sort_values("timestamp", kind="stable")
    both[["series_id", "timestamp", "value"]].to_csv(tmp_path / "both.csv", index=False)
    one.to_csv(tmp_path / "one.csv", index=False)
    for name in ("both", "one"):
        assert run("--input", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / f"{name}_scores.csv"),
                   "--model", "zscore").exit_code == 0
    scored = pd.read_csv(tmp_path / "both_scores.csv")
    assert list(scored["series_id"]) == list(both["series_id"])
    np.testing.assert_array_equal(scored.loc[scored["series_id"] == "a", "anomaly_score"],
                                  scores_of(tmp_path / "one_scores.csv"))


@pytest.mark.parametrize("model", ["zscore", "isolation-forest", "autoencoder"])
def test_each_model_scores_causally_and_flags_the_drop(series_file, tmp_path, model):
    if model == "autoencoder" and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    whole, part = tmp_path / "whole.csv", tmp_path / "part.csv"
    cut = SPIKE + 1
    pd.read_csv(series_file, dtype=str).iloc[:cut].to_csv(part, index=False)
    for path in (series_file, part):
        result = run("--input", str(path), "--out", str(path.with_suffix(".out")), "--model", model)
        assert result.exit_code == 0, result.output
    scores = scores_of(series_file.with_suffix(".out"))
    np.testing.assert_allclose(scores_of(part.with_suffix(".out")), scores[:cut], atol=1e-6)
    assert scores[SPIKE] >= FLAGGED and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize(("content", "field"), [
    ("timestamp,speed\n2024-01-01 00:00,3\n", "value"),
    ("time,value\n2024-01-01 00:00,3\n", "timestamp"),
    ("timestamp,value\n2024-01-01 00:00,3\nyesterday,4\n", "timestamp"),
    ("timestamp,value\n2024-01-01 00:00,3\n2024-01-01 00:05,fast\n", "value"),
    ("", "input"),
])
def test_bad_input_names_the_field_and_exits_2(tmp_path, content, field):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run("--input", str(path), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {field}: ")


def test_an_unknown_model_names_the_known_ones(series_file, tmp_path):
    result = run("--input", str(series_file), "--out", str(tmp_path / "out.csv"), "--model", "magic")
    assert result.exit_code == 2 and "error: model: unknown model 'magic'" in result.output


def test_an_unknown_time_zone_is_named(series_file, tmp_path):
    result = run("--input", str(series_file), "--out", str(tmp_path / "out.csv"), "--timezone", "Mars/Olympus")
    assert result.exit_code == 2 and result.output.startswith("error: timezone: unknown time zone")


def test_timestamps_with_offsets_and_no_time_zone_get_a_note_that_the_profiles_follow_utc(tmp_path):
    series = traffic_series(rows=300)
    series.to_csv(tmp_path / "wall-clock.csv", index=False)
    series.assign(timestamp=series["timestamp"] + "+02:00").to_csv(tmp_path / "offsets.csv", index=False)
    out = str(tmp_path / "scores.csv")
    noted = run("--input", str(tmp_path / "offsets.csv"), "--out", out, "--model", "zscore")
    assert noted.exit_code == 0 and "note: timezone: not given, so the time-of-day profiles follow UTC" in noted.output
    for given in (run("--input", str(tmp_path / "offsets.csv"), "--out", out, "--model", "zscore",
                      "--timezone", "Europe/Paris"),
                  run("--input", str(tmp_path / "wall-clock.csv"), "--out", out, "--model", "zscore")):
        assert given.exit_code == 0, given.output
        assert "note: timezone" not in given.output


def test_a_header_with_spaces_around_its_names_is_read(tmp_path):
    (tmp_path / "spaced.csv").write_text("timestamp , value\n2024-01-01T00:00:00+01:00,1\n2024-07-01T00:00:00+02:00,2\n")
    result = run("--input", str(tmp_path / "spaced.csv"), "--out", str(tmp_path / "scores.csv"), "--model", "zscore")
    assert result.exit_code == 0, result.output
    assert "offsets change (+01:00, +02:00)" in result.output
