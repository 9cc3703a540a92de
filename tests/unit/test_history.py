"""Simulated history: daily profiles, peak congestion, rain and incident effects, determinism, idempotent writes."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.city import DEFAULT_CITY_FILE, read_city
from smartcity.events.common import ngsi_id
from smartcity.simulator import history
from smartcity.simulator.history import simulate_history
from smartcity.simulator.incidents import IncidentPlan
from smartcity.simulator.macroscopic import city_roads
from smartcity.simulator.network import neighbours, topology, traffic_loops
from smartcity.simulator.sumo_network import SCENARIO, scenario_dir
from streaming.indices import congestion_index

BERLIN = ZoneInfo("Europe/Berlin")
END = datetime(2026, 3, 31, tzinfo=BERLIN)  # the end of Monday 30 March
MONDAY_PEAK = datetime(2026, 3, 30, 7, 30, tzinfo=BERLIN)
NET_FILE = scenario_dir(SCENARIO) / f"{SCENARIO}.net.xml"


def segment(edge: str) -> str:
    return ngsi_id("RoadSegment", edge)


def with_city_time(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the local hour, weekday flag, priority and flow per lane of each segment window."""
    roads = city_roads()
    by_id = {segment(edge): i for i, edge in enumerate(roads.edges)}
    index = frame["segment_id"].map(by_id)
    local = frame["window_start"].dt.tz_convert(BERLIN)
    return frame.assign(hour=local.dt.hour + local.dt.minute / 60, weekday=local.dt.day_of_week < 5,
                        priority=roads.priority[index], flow_per_lane=frame["flow_per_hour"] / roads.lanes[index])


@pytest.fixture(scope="module")
def fortnight():
    """Two weeks without incidents: the daily and weekly profiles and the peaks' congestion alone."""
    return with_city_time(simulate_history(14, END, seed=3, incidents_per_day=0).segments)


def test_neighbours_are_the_connections_of_the_net_file():
    root = ElementTree.parse(NET_FILE).getroot()
    edge = "-133081985#0"
    after = {c.get("to") for c in root.iter("connection") if c.get("from") == edge and c.get("dir") != "t"}
    before = {c.get("from") for c in root.iter("connection")
              if c.get("to") == edge and c.get("dir") != "t" and not c.get("from").startswith(":")}
    assert neighbours()[segment(edge)] == {"downstream": sorted(map(segment, after)),
                                           "upstream": sorted(map(segment, before))}
    assert after == {"23283435#1", "-309744810#1"}
    joins = {edge: {side: item[side] for side in ("upstream", "downstream")} for edge, item in topology(NET_FILE).items()}
    assert joins == {s.id: {"upstream": s.upstream, "downstream": s.downstream}
                     for s in read_city(DEFAULT_CITY_FILE).segments}  # the city file is up to date


def test_arterials_carry_urban_flows_at_the_weekday_peak_and_less_at_the_weekend(fortnight):
    arterials = fortnight[(fortnight.priority >= 7) & fortnight.hour.between(7.75, 8.2)]
    weekday = arterials[arterials.weekday].groupby("segment_id").flow_per_lane.mean()
    weekend = arterials[~arterials.weekday].groupby("segment_id").flow_per_lane.mean()
    assert 600 <= weekday.median() <= 1800
    assert weekday.max() <= 1900
    assert weekend.median() < 0.6 * weekday.median()


def test_weekday_peaks_congest_some_arterials_and_nights_flow_freely(fortnight):
    arterials = fortnight[fortnight.priority >= 7]
    peak = arterials[arterials.weekday & (arterials.hour.between(7, 9) | arterials.hour.between(16.5, 18.5))]
    slowest = peak.groupby("segment_id").mean_speed_kmh.min()
    assert (slowest < 25).mean() >= 0.2
    assert peak.mean_speed_kmh.median() > 25  # most of the network still moves
    night = arterials[arterials.hour.between(1, 4.5)]
    assert night.mean_speed_kmh.quantile(0.01) > 30
    assert night.congestion_index.max() < peak.congestion_index.max()


def test_rain_lowers_speed(monkeypatch):
    dry = simulate_history(1, END, seed=3, incidents_per_day=0).segments
    monkeypatch.setattr(history, "rain_per_step", lambda windows, weather: np.full(len(windows), 2.0))
    wet = simulate_history(1, END, seed=3, incidents_per_day=0).segments
    assert wet.mean_speed_kmh.mean() < 0.93 * dry.mean_speed_kmh.mean()


def test_an_incident_slows_its_segment_then_its_upstream_neighbour():
    roads, loops = city_roads(), {d.edge: d.lane for d in traffic_loops()}
    busiest = max((i for i, edge in enumerate(roads.edges) if edge in loops and roads.priority[i] >= 9
                   and any(roads.edges[j] in loops for j in np.nonzero(roads.upstream[i])[0])),
                  key=lambda i: roads.peak_demand[i])
    upstream = max((j for j in np.nonzero(roads.upstream[busiest])[0] if roads.edges[j] in loops),
                   key=lambda j: roads.upstream[busiest, j])
    plan = IncidentPlan("accident", MONDAY_PEAK, 60, loops[roads.edges[busiest]])
    calm = simulate_history(1, END, seed=3, incidents=[]).segments
    hit = simulate_history(1, END, seed=3, incidents=[plan])
    assert hit.incidents.status.tolist() == ["active", "cleared"]
    assert hit.incidents.segment_id.tolist() == [segment(roads.edges[busiest])] * 2

    def speeds(frame, index):
        rows = frame[frame.segment_id == segment(roads.edges[index])].set_index("window_start")
        return rows.mean_speed_kmh.tz_convert(BERLIN)

    during = slice(MONDAY_PEAK, MONDAY_PEAK.replace(hour=8, minute=25))
    for index in (busiest, upstream):
        assert speeds(hit.segments, index)[during].mean() < 0.6 * speeds(calm, index)[during].mean()
    first_slow = {index: (speeds(hit.segments, index) < 0.6 * speeds(calm, index)).idxmax()
                  for index in (busiest, upstream)}
    assert first_slow[busiest] < first_slow[upstream]  # the queue reaches upstream a step or more later
    before = slice(None, MONDAY_PEAK.replace(minute=25))
    assert speeds(hit.segments, busiest)[before].equals(speeds(calm, busiest)[before])


def test_rows_follow_the_streaming_jobs_formulas_and_the_live_ids():
    result = simulate_history(0.5, END, seed=4)
    sensors, segments = result.sensors, result.segments
    assert (segments.flow_per_hour == 12 * segments.flow).all()
    row = sensors.dropna().iloc[100]
    assert row.congestion_index == pytest.approx(congestion_index(row.mean_speed_kmh, row.mean_occupancy), abs=1e-4)
    sums = sensors.groupby(["segment_id", "window_start"]).flow.sum()
    assert (segments.set_index(["segment_id", "window_start"]).flow == sums.loc[segments.set_index(
        ["segment_id", "window_start"]).index]).all()
    assert set(sensors.sensor_id) == {ngsi_id("TrafficFlowObserved", d.id) for d in traffic_loops()}
    assert segments.window_start.iloc[-1] == pd.Timestamp(END) - pd.Timedelta(minutes=5)
    assert (sensors.event_count == 60).all() and sensors.mean_speed_kmh[sensors.flow == 0].isna().all()
    assert not result.weather.empty and result.weather.observed_at.dt.tz is not None


def test_same_seed_same_rows_other_seed_other_rows():
    first, again = simulate_history(0.5, END, seed=9), simulate_history(0.5, END, seed=9)
    pd.testing.assert_frame_equal(first.segments, again.segments)
    pd.testing.assert_frame_equal(first.sensors, again.sensors)
    pd.testing.assert_frame_equal(first.incidents, again.incidents)
    assert not first.segments.flow.equals(simulate_history(0.5, END, seed=10).segments.flow)


def test_generating_twice_leaves_one_row_per_key(tmp_path):
    from smartcity.backends.database import open_database
    from smartcity.settings import Settings
    from smartcity.simulator.history_store import generate_history
    from smartcity.storage.traffic_hourly import ROLLUPS

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", secrets_dir=tmp_path / "secrets")
    first = generate_history(settings, 0.25, END, seed=2, incidents_per_day=24)
    second = generate_history(settings, 0.25, END, seed=2, incidents_per_day=24)
    assert first.rows == second.rows and first.rows["traffic_segment_5min"] == 72 * 129
    db = open_database(settings.database_url)
    try:
        for table, count in first.rows.items():
            assert db.query(f"SELECT count(*) AS n FROM {table}")[0]["n"] == count, table
        assert db.query("SELECT count(*) AS n FROM sensors")[0]["n"] == len(traffic_loops())
        for window_table, (rollup, _) in ROLLUPS.items():  # the history is queryable by hour: its rollup is there
            hours = db.query(f"SELECT SUM(windows) AS windows, SUM(flow) AS flow FROM {rollup}")[0]
            windows = db.query(f"SELECT count(*) AS windows, SUM(flow) AS flow FROM {window_table}")[0]
            assert hours == windows and windows["windows"] == first.rows[window_table], rollup
    finally:
        db.close()


def test_on_sqlite_other_writers_get_a_turn_between_the_history_transactions(tmp_path, monkeypatch):
    import sqlite3
    import time
    from contextlib import closing
    from types import SimpleNamespace

    from smartcity.settings import Settings
    from smartcity.simulator import history_store

    path = tmp_path / "db.sqlite"
    turns = []

    def another_writer_takes_its_turn(seconds: float) -> None:
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:  # no wait: free right now
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        turns.append(seconds)

    monkeypatch.setattr(history_store, "time", SimpleNamespace(sleep=another_writer_takes_its_turn,
                                                               monotonic=time.monotonic))
    settings = Settings(database_url=f"sqlite:///{path}", secrets_dir=tmp_path / "secrets")
    history_store.generate_history(settings, 0.5, END, seed=2)
    assert len(turns) == 2 and all(0 <= seconds <= history_store.SQLITE_TURN_S for seconds in turns)


@pytest.mark.parametrize("flags, flag", [(["--days", "0"], "--days"), (["--days", "2", "--end", "soon"], "--end"),
                                         (["--days", "2", "--end", "2026-03-30T00:00"], "--end")])
def test_bad_flags_exit_2_naming_the_flag(flags, flag):
    result = CliRunner().invoke(app, ["history", "generate", *flags])
    assert result.exit_code == 2, result.output
    assert flag in result.output


def test_without_measurement_noise_the_same_city_reports_its_expected_values():
    measured = simulate_history(1, END, seed=5).sensors
    exact = simulate_history(1, END, seed=5, measurement_noise=False).sensors
    pd.testing.assert_frame_equal(measured[["sensor_id", "window_start"]], exact[["sensor_id", "window_start"]])
    busy = (measured.flow >= 20) & (exact.flow >= 20)
    ratio = np.log(measured.mean_speed_kmh[busy] / exact.mean_speed_kmh[busy])
    assert abs(ratio.mean()) < 0.01 and 0.01 < ratio.std() < 0.1
    assert abs(measured.flow[busy].sum() / exact.flow[busy].sum() - 1) < 0.02
    assert (measured.flow != exact.flow).mean() > 0.9
    assert exact.mean_speed_kmh[exact.flow > 0].notna().all()
