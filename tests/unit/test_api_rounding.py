"""Answers carry measures at their unit's precision, not the binary noise of sums of doubles."""

from __future__ import annotations

import math

import orjson
from pydantic import BaseModel

from smartcity.api.caching import document_body, json_body
from smartcity.api.rounding import decimals_of, rounded, rounded_rows


def test_each_kind_of_measure_keeps_the_decimals_of_its_unit():
    assert [decimals_of(name) for name in ("lon", "lat", "west", "coordinates")] == [6] * 4
    assert [decimals_of(name) for name in ("occupancy", "congested_share", "congestion_index_max", "coverage",
                                           "validation_fraction", "transit_punctuality", "bikes_score")] == [3] * 7
    assert [decimals_of(name) for name in ("average_speed_kmh", "speed", "flow_per_hour", "intensity_per_hour",
                                           "heading", "average_delay_s", "ttl_s", "mobility_index", "p50",
                                           "average_fare", "mae")] == [2] * 11
    assert decimals_of("robust_z") == decimals_of("score") == 6


def test_floats_are_rounded_by_the_field_they_are_under_at_any_depth():
    document = {"items": [{"average_speed_kmh": 28.131999999999998, "occupancy": 0.30000000000000004,
                           "vehicles": 7, "name": "A 1", "observed": None},
                          {"location": {"type": "Point", "coordinates": [6.95512345678, 50.9712345678]}}],
                "robust_z": -3.0000000000000004}
    assert rounded(document) == {
        "items": [{"average_speed_kmh": 28.13, "occupancy": 0.3, "vehicles": 7, "name": "A 1", "observed": None},
                  {"location": {"type": "Point", "coordinates": [6.955123, 50.971235]}}],
        "robust_z": -3.0}
    assert orjson.loads(document_body({"occupancy": math.nan})) == {"occupancy": None}  # as pydantic writes NaN


class Reading(BaseModel):
    sensor_id: str
    lon: float
    average_speed_kmh: float | None
    speed_p85_kmh: float


def test_a_model_answer_is_written_rounded():
    body = json_body(Reading(sensor_id="s", lon=6.9551234567, average_speed_kmh=None, speed_p85_kmh=61.72000000000001))
    assert body == b'{"sensor_id":"s","lon":6.955123,"average_speed_kmh":null,"speed_p85_kmh":61.72}'


def test_rows_are_rounded_as_any_document_is():
    rows = [{"bucket_start": 1767225600, "occupancy": 0.123456, "average_speed_kmh": 28.131999999999998,
             "speed_p50_kmh": None, "samples": 12, "flow_per_hour": float("nan"), "other": -0.0000004},
            {"bucket_start": 1767229200, "occupancy": 1, "average_speed_kmh": 2.675, "speed_p50_kmh": 30.005,
             "samples": 0, "flow_per_hour": 1e20, "other": 1 / 3}]
    assert orjson.dumps(rounded_rows(rows)) == orjson.dumps(rounded(rows))
    assert rounded_rows(rows)[0]["average_speed_kmh"] == 28.13 and rounded_rows([]) == []


def test_rounding_keeps_what_has_no_decimals_to_round_and_rounds_as_integer_division():
    for value in (math.inf, -math.inf, 1e300):
        assert rounded({"speed": value}) == {"speed": value}
        assert rounded_rows([{"speed": value}]) == [{"speed": value}]
    assert math.isnan(rounded_rows([{"speed": math.nan, "occupancy": 0.5}])[0]["speed"])
    assert rounded({"occupancy": 0.30000000000000004, "lon": 6.9551234567, "speed": -1.005}) == {
        "occupancy": 0.3, "lon": 6.955123, "speed": -1.0}  # -1.005 is -100.49999999999999 hundredths
    assert [rounded(value, "speed") for value in (0.025, 0.035, 28.131999999999998)] == [0.02, 0.04, 28.13]
