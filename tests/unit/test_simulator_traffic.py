"""The SUMO traffic stream: an injected accident congests the lane upstream of it; scale-out replicas."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from smartcity.simulator.city import load_city
from smartcity.simulator.incidents import IncidentPlan, IncidentSource, parse_incident
from smartcity.simulator.source import SourceContext
from smartcity.simulator.sumo import TrafficSimulation
from smartcity.simulator.traffic import REPLICA_LAGS, TrafficSource

START = datetime(2026, 3, 2, 7, 50, tzinfo=ZoneInfo("Europe/Berlin"))
SEED = 7


def run_traffic(minutes: int, plans=(), sensors=None):
    """Every tick's traffic events and the incident alerts of a short morning-rush simulation."""
    simulation = TrafficSimulation(SEED, 7 * 3600 + 50 * 60, detector_lanes=sensors)
    try:
        context = SourceContext(SEED, START, load_city(), traffic=simulation)
        traffic, incidents = TrafficSource(context, sensors), IncidentSource(context, list(plans))
        ticks, alerts, now = [], [], START
        for _ in range(minutes * 12):
            alerts += incidents.observe(now)
            simulation.advance(5)
            now += timedelta(seconds=5)
            ticks.append(traffic.observe(now))
        return ticks, alerts
    finally:
        simulation.close()


def lane_summary(ticks, sensor_id):
    """Mean occupancy and mean speed (0 when nobody passed, as a standstill) of one sensor."""
    events = [e for tick in ticks for e in tick if e.id == sensor_id]
    occupancy = sum(e.occupancy for e in events) / len(events)
    speed = sum(e.averageVehicleSpeed or 0.0 for e in events) / len(events)
    return occupancy, speed


@pytest.fixture(scope="module")
def baseline():
    return run_traffic(minutes=12)[0]


def test_an_accident_raises_occupancy_and_drops_speed_upstream(baseline):
    # the busiest sensor lane of the first five minutes that the rush hour alone leaves moving, with its accident
    # 10 m before the lane's end
    totals = {}
    for tick in baseline[:60]:
        for event in tick:
            totals[event.id] = totals.get(event.id, 0) + event.intensity
    busiest = max((sensor for sensor in totals if congested_share(baseline[:60], sensor) < 0.2), key=totals.get)
    lane = busiest.split("loop.", 1)[1].replace("%23", "#")
    plan = IncidentPlan("accident", START + timedelta(minutes=1), minutes=30, lane=lane)
    with_accident, alerts = run_traffic(minutes=12, plans=[plan])

    assert [a.status for a in alerts] == ["active"] and alerts[0].subCategory == "carAccident"
    assert alerts[0].refRoadSegment.endswith(lane.rsplit("_", 1)[0].replace("#", "%23"))
    free_occupancy, free_speed = lane_summary(baseline[60:], busiest)
    jam_occupancy, jam_speed = lane_summary(with_accident[60:], busiest)
    assert jam_occupancy > free_occupancy + 0.3, (free_occupancy, jam_occupancy)
    assert jam_speed < free_speed / 3, (free_speed, jam_speed)
    # the accident congests the lane all the time; the rush hour alone, at most now and then
    assert congested_share(with_accident[60:], busiest) > 0.9
    assert congested_share(baseline[60:], busiest) < 0.5


def congested_share(ticks, sensor_id):
    events = [e for tick in ticks for e in tick if e.id == sensor_id]
    return sum(e.congested for e in events) / len(events)


def test_a_cleared_accident_gives_a_cleared_alert_and_traffic_flows_again():
    ticks, alerts = run_traffic(minutes=8, plans=[IncidentPlan("accident", START, minutes=2)])
    assert [a.status for a in alerts] == ["active", "cleared"]
    assert alerts[1].id == alerts[0].id and alerts[1].validTo == START + timedelta(minutes=2)


def test_scale_out_replicates_sensors_with_their_own_ids_and_lagged_readings():
    simulation = TrafficSimulation(SEED, 8 * 3600)
    real = len(simulation.detectors)
    try:
        context = SourceContext(SEED, START, load_city(), traffic=simulation)
        source = TrafficSource(context, sensors=3 * real + 5)
        ticks = []
        for k in range(REPLICA_LAGS + 3):
            simulation.advance(5)
            ticks.append(source.observe(START + timedelta(seconds=5 * (k + 1))))
    finally:
        simulation.close()
    last = ticks[-1]
    assert len(last) == 3 * real + 5 and len({e.id for e in last}) == len(last)
    assert sum(e.id.startswith("urn:ngsi-ld:TrafficFlowObserved:r1.") for e in last) == real
    sensor = source.sensors[real]  # the first replica of the first real sensor
    original = source.sensors[0]
    replica_now = next(e for e in last if e.id == sensor.id)
    original_then = next(e for e in ticks[-1 - sensor.lag] if e.id == original.id)
    assert (replica_now.intensity, replica_now.occupancy) == (original_then.intensity, original_then.occupancy)
    assert replica_now.dateObserved == last[0].dateObserved


def test_fewer_sensors_than_lanes_uses_the_main_roads_first():
    simulation = TrafficSimulation(SEED, 8 * 3600, detector_lanes=10)
    try:
        assert len(simulation.detectors) == 10
        speeds = [simulation.traci.lane.getMaxSpeed(d.lane) for d in simulation.detectors]
        assert speeds == sorted(speeds, reverse=True)
    finally:
        simulation.close()


def test_incident_options_are_parsed_and_bad_ones_named():
    plan = parse_incident("kind=closure,at=08:10,minutes=15,lane=abc_0", START)
    assert (plan.kind, plan.start, plan.minutes, plan.lane) == ("closure", START.replace(hour=8, minute=10), 15, "abc_0")
    assert parse_incident("at=+90s", START).start == START + timedelta(seconds=90)
    with pytest.raises(ValueError, match="kind must be one of"):
        parse_incident("kind=flood", START)
    with pytest.raises(ValueError, match="unknown keys"):
        parse_incident("kind=accident,when=now", START)
    with pytest.raises(ValueError, match="at must be HH:MM"):
        parse_incident("at=soon", START)
