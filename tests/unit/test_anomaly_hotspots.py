"""Hotspots from known points: DBSCAN in space (haversine) and time, ids fixed by the oldest member, extents."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from models.anomaly.hotspots import HotspotPoint, convex_hull, extent, find_hotspots, haversine_m, hotspot_id

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
A = (6.9500, 50.9630)  # two places about 1.8 km apart, and a third between them, 900 m from each
B = (6.9650, 50.9760)
MIDDLE = (6.9580, 50.9700)


def near(place: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lon, lat = place
    return lon + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(lat)))), lat + math.degrees(north_m / 6_371_008.8)


def point(name: str, place: tuple[float, float], minutes: float, kind: str = "anomaly") -> HotspotPoint:
    return HotspotPoint(name, kind, *place, T0 + timedelta(minutes=minutes))


POINTS = [
    point("a1", near(A, 0, 0), 0), point("a2", near(A, 80, 30), 5), point("a3", near(A, -50, 90), 10),
    point("a4", near(A, 120, -60), 20, kind="incident"),
    point("b1", near(B, 0, 0), 30), point("b2", near(B, -100, 40), 35), point("b3", near(B, 60, -120), 40),
    point("noise", MIDDLE, 20),
    point("late", near(A, 10, 10), 200),  # where a hotspot was, hours after it: not part of it
]


def test_two_clusters_and_noise():
    hotspots = find_hotspots(POINTS, radius_m=300, window_s=1800, min_points=3)
    assert [h.members for h in hotspots] == [("a1", "a2", "a3", "a4"), ("b1", "b2", "b3")]
    first, second = hotspots
    assert (first.size, first.anomalies, first.incidents) == (4, 3, 1)
    assert (first.since, first.last_seen) == (T0, T0 + timedelta(minutes=20))
    assert (second.since, second.last_seen) == (T0 + timedelta(minutes=30), T0 + timedelta(minutes=40))
    assert haversine_m(first.lon, first.lat, *A) < 60 and haversine_m(second.lon, second.lat, *B) < 60
    ring = first.extent["coordinates"][0]
    assert first.extent["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5  # four corners, closed
    assert first.id == hotspot_id("a1") and second.id == hotspot_id("b1")


def test_close_in_space_but_not_in_time_is_no_hotspot():
    spread = [point(f"p{i}", near(A, 10 * i, 0), 45 * i) for i in range(4)]
    assert find_hotspots(spread, radius_m=300, window_s=1800, min_points=3) == []
    assert [h.size for h in find_hotspots(spread, radius_m=300, window_s=3 * 3600, min_points=3)] == [4]


def test_the_id_is_the_same_for_the_same_members_and_while_the_hotspot_grows():
    cluster = [p for p in POINTS if p.id.startswith("a")]
    [before] = find_hotspots(cluster[::-1], radius_m=300, min_points=3)
    [again] = find_hotspots(cluster, radius_m=300, min_points=3)
    [grown] = find_hotspots([*cluster, point("a5", near(A, 30, 30), 25)], radius_m=300, min_points=3)
    assert before.id == again.id == grown.id and grown.members[-1] == "a5"
    [other] = find_hotspots(cluster[1:] + [point("a0", near(A, 5, 5), 3)], radius_m=300, min_points=3)
    assert other.id != before.id


def test_a_duplicated_id_counts_once():
    cluster = [p for p in POINTS if p.id.startswith("b")]
    assert find_hotspots([*cluster, cluster[0]], radius_m=300, min_points=4) == []


def test_extent_of_points_on_one_spot_or_a_line_is_a_small_box():
    box = extent([A, A, A])["coordinates"][0]
    lons, lats = [c[0] for c in box], [c[1] for c in box]
    assert len(box) == 5 and min(lons) < A[0] < max(lons) and min(lats) < A[1] < max(lats)
    assert haversine_m(min(lons), A[1], max(lons), A[1]) == pytest.approx(50, rel=0.01)
    assert len(extent([near(A, 0, 0), near(A, 100, 0), near(A, 200, 0)])["coordinates"][0]) == 5
    assert convex_hull([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)]) == [(0, 0), (1, 0), (1, 1), (0, 1)]


def test_bad_options_and_no_points():
    assert find_hotspots([]) == []
    with pytest.raises(ValueError):
        find_hotspots(POINTS, radius_m=0)
