"""The demo's city starts at a busy hour by default, at the live pace, without writing over a resumed city."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from smartcity.api.usage import how_to_call
from smartcity.backends.database import open_database
from smartcity.cli import app
from smartcity.demo import Demo, DemoOptions
from smartcity.demo_clock import busy_start, check_start, city_start, off_the_clock
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.fixtures.functions.helpers import embedded_settings
from tests.storage_samples import sample_events, stored

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_by_day_the_city_runs_at_the_wall_clock_and_at_night_from_the_next_morning_peak():
    assert busy_start(at("2026-12-07T09:15:00+00:00"), BERLIN) == at("2026-12-07T10:15:00+01:00")
    assert busy_start(at("2026-12-07T04:30:00+00:00"), BERLIN) == at("2026-12-07T07:30:00+01:00")  # 05:30 there
    assert busy_start(at("2026-12-07T21:30:00+00:00"), BERLIN) == at("2026-12-08T07:30:00+01:00")  # 22:30 there
    assert busy_start(at("2026-07-01T03:00:00+00:00"), BERLIN) == at("2026-07-01T07:30:00+02:00")  # summer time


def test_each_start_choice():
    night = at("2026-12-07T04:30:00+00:00")
    assert city_start("now", night, BERLIN) == night
    assert city_start("busy", night, BERLIN) == at("2026-12-07T07:30:00+01:00")
    assert city_start("08:05", night, BERLIN) == at("2026-12-07T08:05:00+01:00")
    assert city_start("2026-12-06T17:00:00Z", night, BERLIN) == at("2026-12-06T18:00:00+01:00")
    # a resumed city goes on after the newest reading stored, when that is later
    stored_until = at("2026-12-07T08:10:00.5+01:00")
    assert city_start("busy", night, BERLIN, stored_until) == at("2026-12-07T08:10:01+01:00")
    assert city_start("busy", night, BERLIN, at("2026-12-06T08:10:00+01:00")) == at("2026-12-07T07:30:00+01:00")
    assert off_the_clock(city_start("busy", night, BERLIN), night) and not off_the_clock(night, night)


@pytest.mark.parametrize("bad", ["later", "24:00", "7", "2026-12-07T08:00:00"])  # the last: no offset
def test_a_bad_start_is_refused_naming_the_option(bad):
    with pytest.raises(ValueError):
        check_start(bad)
    result = CliRunner().invoke(app, ["demo", "--start", bad, "--no-streaming"])
    assert result.exit_code == 2 and "--start" in result.output


def test_a_resumed_demo_starts_after_its_stored_city(tmp_path: Path):
    settings = embedded_settings(tmp_path, secrets_dir=tmp_path / "secrets")
    demo = Demo(settings, DemoOptions(data_dir=tmp_path, start="busy"), say=lambda line: None)
    demo.prepare()
    assert demo.start >= datetime.now(timezone.utc) - timedelta(seconds=5)
    later = datetime.now(timezone.utc) + timedelta(days=2)
    database = open_database(settings.database_url)
    TimeSeriesWriter(database).write([stored("traffic-sensors", sample_events(later)["traffic-sensors"])])
    database.close()
    resumed = Demo(settings, DemoOptions(data_dir=tmp_path, start="busy"), say=lambda line: None)
    resumed.prepare()
    assert resumed.start == (later + timedelta(seconds=1)).replace(microsecond=0)
    assert resumed.forecasting.start_time == resumed.start  # the history ends where the city starts
    assert f"from={resumed.start.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}" in resumed.how_to_call()


def test_the_example_calls_name_the_citys_day_when_it_runs_off_the_clock():
    lines = how_to_call("http://127.0.0.1:8080", "t", city_start=at("2026-12-07T07:30:00+01:00")).splitlines()
    history = next(line for line in lines if "/v1/traffic/history" in line)
    assert "bucket=15m&from=2026-12-07T06:30:00Z&to=2026-12-08T06:30:00Z" in history
    assert "from=" not in how_to_call("http://127.0.0.1:8080", "t")
