"""Training runs and their CLI: stored history on the grid, promotion only of a better model, list / promote /
rollback with their exit codes, too little history, the schedule and its Kubernetes CronJob."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from models import catalog
from models.panel import Panel
from models.registry import Registry
from models.schedule import TrainingSchedule, scheduled_training
from models.targets import DETECTED_ALERT_SOURCES, load_context, load_panel
from models.training import TrainingOptions
from smartcity.backends.database import open_database
from smartcity.backends.objects import open_objects
from smartcity.cli.models_training import COMMANDS
from smartcity.runtime.knative import SECRETS_MOUNT, SETTINGS_CONFIG_MAP
from tests.models_storage import (connected_segments, prepared_settings, store_incident, store_segment_panel,
                                  store_weather, stored_history)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 1, 4, tzinfo=timezone.utc)
runner = CliRunner()


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    for name, command in COMMANDS.items():
        app.command(name)(command)
    return app


@pytest.fixture
def history(tmp_path, monkeypatch):
    monkeypatch.setitem(catalog.MODELS, "handicapped", "tests.models_storage:Handicapped")
    monkeypatch.setitem(catalog.MODELS, "broken", "tests.models_storage:Broken")
    settings, panel = stored_history(tmp_path)
    return settings, ["--database-url", settings.database_url, "--objects-url", settings.objects_url]


# --- the stored history on the grid --------------------------------------------------------------------------


def test_load_panel_places_windows_on_the_grid_with_incidents_rain_and_neighbours(tmp_path):
    settings = prepared_settings(tmp_path)
    a, b, c = connected_segments(3)
    values = np.full((3, 12), np.nan)
    values[0, [0, 2, 11]] = [10.0, 12.0, 14.0]
    values[1, 3] = 20.0
    values[2, 5] = 30.0
    db = open_database(settings.database_url)
    store_segment_panel(db, Panel([a, b, c], T0, 5, values))
    # on a: reported at 00:07 until 00:30, cleared at 00:21; on b: a detected jam, not a reported incident
    store_incident(db, "alert-1", a, [(minutes(7), minutes(7), minutes(30)), (minutes(21), minutes(7), minutes(21))])
    for number, source in enumerate(DETECTED_ALERT_SOURCES):
        store_incident(db, f"jam-{number}", b, [(minutes(5), minutes(5), minutes(10))], alert_source=source)
    store_weather(db, [(minutes(-50), 2.0), (minutes(12), 4.0)])

    panel = load_panel(db, "segment-speed", T0, minutes(60), timezone="Europe/Berlin")

    assert panel.series_ids == [a, b, c] and panel.start == T0 and panel.n_times == 12
    np.testing.assert_array_equal(panel.values, values)
    np.testing.assert_array_equal(np.flatnonzero(panel.exog["incident"][0]), [1, 2, 3, 4])  # 00:05 .. 00:25
    assert not panel.exog["incident"][1:].any()
    # 2 mm carried from 23:10 for an hour (to 00:10), 4 mm from 00:10 for an hour: the same for every series
    np.testing.assert_array_equal(panel.exog["rain"][0], [2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(panel.exog["rain"][2], panel.exog["rain"][0])
    network = pytest.importorskip("smartcity.simulator.network").neighbours()
    expected = [sorted([a, b, c].index(o) for o in network[s]["downstream"] if o in (a, b, c)) for s in (a, b, c)]
    assert [sorted(links) for links in panel.downstream] == expected and any(expected)

    context = load_context(db, "segment-speed", [a], until=minutes(60), steps=4, timezone="UTC")
    assert context.series_ids[0] == a and context.n_times == 4 and context.start == minutes(40)
    np.testing.assert_array_equal(context.values[0], [np.nan, np.nan, np.nan, 14.0])
    assert context.series_ids[1:] == sorted(set(network[a]["upstream"] + network[a]["downstream"]) - {a})
    sensors = load_panel(db, "sensor-flow", T0, minutes(60), timezone="UTC")
    assert sensors.n_series == 0 and sensors.upstream == []


# --- training and promotion ----------------------------------------------------------------------------------


def test_train_promotes_a_better_model_and_refuses_a_worse_one(app, history):
    settings, stores = history
    first = runner.invoke(app, ["train", "--target", "segment-flow", "--models", "persistence", "--days", "6",
                                "--holdout-days", "1", *stores])
    assert first.exit_code == 0, first.output
    assert "promoted persistence" in first.output
    registry = Registry(open_objects(settings.objects_url))
    promoted = registry.promoted_version("segment-flow")
    card = registry.card("segment-flow", promoted)
    assert set(card["baselines"]) == {"historical-average", "persistence"}
    assert set(card["metrics"]) == {"15", "30", "60"} and card["metrics"]["15"]["mae"] < card["baselines"][
        "historical-average"]["15"]["mae"]
    assert card["data"]["series"] == 6 and card["data"]["step_min"] == 5 and card["data"]["holdout_from"].startswith(
        "2024-01-09T00:00")
    assert {"python", "numpy"} <= set(card["libraries"]) and card["code_revision"] and card["training_time_s"] >= 0

    worse = runner.invoke(app, ["train", "--target", "segment-flow", "--models", "handicapped", "--days", "6",
                                "--holdout-days", "1", *stores])
    assert worse.exit_code == 0, worse.output
    assert "not promoted" in worse.output and f"promoted persistence {promoted}" in worse.output.replace("\n", " ")
    assert registry.promoted_version("segment-flow") == promoted
    assert len(registry.versions("segment-flow")) == 2


def test_a_model_that_fails_to_train_is_skipped_and_the_others_go_on(app, history):
    settings, stores = history
    train = ["train", "--target", "segment-flow", "--days", "6", "--holdout-days", "1", *stores]
    result = runner.invoke(app, [*train, "--models", "broken,persistence"])
    assert result.exit_code == 0, result.output
    assert "broken: skipped, training failed: RuntimeError('diverged')" in result.output
    assert "promoted persistence" in result.output and "not trained: broken" in result.output
    alone = runner.invoke(app, [*train, "--models", "broken"])
    assert alone.exit_code == 2 and "no model could be trained: broken: training failed" in alone.output


def test_list_promote_and_rollback(app, history, monkeypatch):
    settings, stores = history
    monkeypatch.setattr(catalog, "LEARNED", ("handicapped",))  # trained as a learned model: inside WithFallback
    train = ["train", "--target", "segment-flow", "--days", "6", "--holdout-days", "1", *stores]
    assert runner.invoke(app, [*train, "--models", "persistence"]).exit_code == 0
    assert runner.invoke(app, [*train, "--models", "handicapped", "--no-promote"]).exit_code == 0
    registry = Registry(open_objects(settings.objects_url))
    good, bad = registry.versions("segment-flow")
    objects = stores[2:]

    listed = runner.invoke(app, ["list", *objects], terminal_width=250)
    assert listed.exit_code == 0, listed.output
    good_line = next(line for line in listed.output.splitlines() if good in line)
    bad_line = next(line for line in listed.output.splitlines() if bad in line)
    assert "*" in good_line and "*" not in bad_line and "persistence" in good_line and "15:" in good_line
    assert "historical average for" not in good_line  # a baseline has no fallback check
    fallback = registry.card("segment-flow", bad)["fallback"]
    assert f"historical average for {fallback['count']} of {fallback['of']} series" in bad_line

    promoted = runner.invoke(app, ["promote", "--target", "segment-flow", bad, *objects])
    assert promoted.exit_code == 0 and registry.promoted_version("segment-flow") == bad
    rolled = runner.invoke(app, ["rollback", "--target", "segment-flow", *objects])
    assert rolled.exit_code == 0 and good in rolled.output
    assert registry.promoted_version("segment-flow") == good

    again = runner.invoke(app, ["rollback", "--target", "segment-flow", *objects])
    assert again.exit_code == 2 and "no previously promoted version" in again.output
    unknown = runner.invoke(app, ["promote", "--target", "segment-flow", "20240101T000000000Z-deadbeef", *objects])
    assert unknown.exit_code == 2 and "20240101T000000000Z-deadbeef" in unknown.output
    wrong_target = runner.invoke(app, ["rollback", "--target", "bus-delay", *objects])
    assert wrong_target.exit_code == 2 and "bus-delay" in wrong_target.output


@pytest.mark.parametrize("flags, message", [
    (["--models", "xgboost,prophet"], "prophet"),
    (["--target", "bus-delay"], "bus-delay"),
    (["--days", "3", "--holdout-days", "1"], "--days 3"),
    (["--holdout-days", "-1"], "--holdout-days"),
    (["--every", "soon"], "--every"),
])
def test_bad_flags_exit_2_naming_them(app, tmp_path, flags, message):
    result = runner.invoke(app, ["train", *flags, "--database-url", f"sqlite:///{tmp_path / 'db'}",
                                 "--objects-url", f"file://{tmp_path / 'objects'}"])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_too_little_history_exits_2(app, tmp_path):
    settings, _ = stored_history(tmp_path, days=2)
    result = runner.invoke(app, ["train", "--models", "persistence", "--days", "28", "--database-url",
                                 settings.database_url, "--objects-url", settings.objects_url])
    assert result.exit_code == 2, result.output
    assert "too little history of segment-speed: 2.0 days stored" in result.output.replace("\n", " ")
    empty = prepared_settings(tmp_path / "empty")
    result = runner.invoke(app, ["train", "--database-url", empty.database_url, "--objects-url", empty.objects_url])
    assert result.exit_code == 2 and "no stored history of segment-speed" in result.output


# --- the schedule ---------------------------------------------------------------------------------------------


def test_schedule_waits_for_history_then_trains(tmp_path):
    settings, panel = stored_history(tmp_path, days=6)
    said: list[str] = []
    options = TrainingOptions(target="segment-flow", models=("persistence",), days=6, holdout_days=1)
    waiting = TrainingSchedule(settings, options, every_s=3600, min_days=7, poll_s=5, say=said.append)
    assert waiting.run_once() == 5 and not waiting.results
    assert "waiting for 7 days of history (6.0 stored)" in said[0]

    heard = []
    schedule = scheduled_training(settings, "segment-flow", every_s=3600, min_days=5, say=said.append,
                                  on_result=heard.append, models="persistence", days=6, holdout_days=1)
    deadline = datetime.now() + timedelta(seconds=30)
    while not schedule.results and datetime.now() < deadline:
        schedule._stopping.wait(0.05)
    schedule.stop(timeout=10)
    assert not schedule.running
    assert schedule.results and schedule.results[0].promoted and heard == schedule.results
    assert Registry(open_objects(settings.objects_url)).promoted_version("segment-flow") == schedule.results[0].promoted


def test_a_failure_after_a_run_is_said_and_the_schedule_goes_on(tmp_path):
    settings, _ = stored_history(tmp_path, days=6)
    said: list[str] = []

    def broken(result):
        raise RuntimeError("gateway down")

    options = TrainingOptions(target="segment-flow", models=("persistence",), days=6, holdout_days=1)
    schedule = TrainingSchedule(settings, options, every_s=3600, min_days=5, say=said.append, on_result=broken)
    assert schedule.run_once() == 3600 and len(schedule.results) == 1
    assert said[-1] == "after training: RuntimeError('gateway down')"


def test_cronjob_runs_the_train_command_on_a_schedule(app):
    manifest = yaml.safe_load((ROOT / "infra" / "kubernetes" / "models-training-cronjob.yaml").read_text())
    assert manifest["kind"] == "CronJob" and manifest["apiVersion"] == "batch/v1"
    assert manifest["metadata"]["namespace"] == "smartcity"
    spec = manifest["spec"]
    assert spec["schedule"] == "0 */6 * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["smartcity", "models", "train"]
    flags = typer.main.get_command(app).commands["train"].params
    known = {option for param in flags for option in param.opts}
    assert {arg for arg in container["args"] if arg.startswith("--")} <= known
    assert container["envFrom"] == [{"configMapRef": {"name": SETTINGS_CONFIG_MAP}}]
    assert container["volumeMounts"][0]["mountPath"] == SECRETS_MOUNT
