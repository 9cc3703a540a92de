"""The fault harness's Spark comparison (bench/faults_spark.py): two runs of the same readings, event times a run
span apart, give equal windows; a reading lost or counted twice shows as a count and as differing windows. The
windows are the traffic job's (computed as its sink writes them, tests/api_samples) in a real SQLite schema."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest

from smartcity.events import TrafficFlowObserved
from smartcity.settings import PROJECT_ROOT
from tests.api_samples.sample_streaming import traffic_windows, write_traffic_windows

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import faults  # noqa: E402
import faults_spark  # noqa: E402

EVENTS = 700  # 7 s of event time: one or two windows per sensor
NOW = datetime(2026, 12, 7, 1, 2, 3, tzinfo=timezone.utc)


@pytest.fixture
def db(migrated_sqlite):
    return migrated_sqlite


def write_run(db, run: str, start: datetime, indexes) -> None:
    readings = [TrafficFlowObserved.model_validate(faults.reading(run, i, start)) for i in indexes]
    write_traffic_windows(db, *traffic_windows(readings, updated_at=NOW))


def test_runs_start_on_window_boundaries_a_span_apart_and_end_an_hour_ago():
    first = faults_spark.first_start(runs=6, events=100_000, now=NOW)
    span = faults_spark.run_span(100_000)
    assert span == timedelta(minutes=25)  # 1,000 s of readings: 4 windows, and an empty one
    assert first.timestamp() % 300 == 0
    assert first + 6 * span <= NOW - timedelta(hours=1) < first + 6 * span + timedelta(minutes=5)


def test_the_same_readings_in_two_runs_give_the_same_windows(db):
    first = faults_spark.first_start(runs=2, events=EVENTS, now=NOW)
    second = first + faults_spark.run_span(EVENTS)
    write_run(db, "none", first, range(EVENTS))
    write_run(db, "spark", second, reversed(range(EVENTS)))
    reference = faults_spark.read_windows(db, "none", first)
    other = faults_spark.read_windows(db, "spark", second)
    assert reference.events == other.events == EVENTS
    assert reference.rows == other.rows > 200  # 200 sensors, and the run's segment
    assert other.flow == reference.flow and other.differing(reference) == 0


def test_a_reading_lost_or_counted_twice_shows(db):
    first = faults_spark.first_start(runs=3, events=EVENTS, now=NOW)
    span = faults_spark.run_span(EVENTS)
    write_run(db, "none", first, range(EVENTS))
    write_run(db, "broker", first + span, [i for i in range(EVENTS) if i != 123])
    write_run(db, "gateway", first + 2 * span, [*range(EVENTS), 5])  # reading 5 delivered twice
    reference = faults_spark.read_windows(db, "none", first)
    lost = faults_spark.read_windows(db, "broker", first + span)
    twice = faults_spark.read_windows(db, "gateway", first + 2 * span)
    assert (lost.events, twice.events) == (EVENTS - 1, EVENTS + 1)
    assert lost.differing(reference) == 2  # the sensor's window and the segment's
    assert twice.differing(reference) == 2


def test_every_nth_reading_of_a_run_is_resent_once_and_none_without_resends():
    batches = [list(range(first, min(first + 70, 250))) for first in range(0, 250, 70)]
    resent = [i for batch in batches for i in faults.resent_indexes(batch, every=100)]
    assert resent == [0, 100, 200]
    assert faults.resent_indexes(batches[0], every=0) == []
