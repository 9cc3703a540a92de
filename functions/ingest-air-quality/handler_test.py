"""ingest-air-quality through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

import pytest

from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("air-quality")


def test_concentrations_in_other_units_are_converted(ingest):
    sent = {k: v for k, v in reading("air-quality").items() if k not in ("no2", "co")}
    normalized = sent | {"no2": {"type": "Property", "value": 0.02, "unitCode": "GP"},  # mg/m³
                         "co": {"type": "Property", "value": 300, "unitCode": "GQ"}}  # µg/m³
    [data] = assert_published(ingest, ingest.post(normalized))
    assert data["no2"] == pytest.approx(20.0) and data["co"] == pytest.approx(0.3)
    assert (data["pm25"], data["airQualityIndex"], data["airQualityLevel"]) == (8.0, 25, "low")


def test_a_negative_concentration_is_refused(ingest):
    assert_refused(ingest, reading("air-quality", pm25=-1), "pm25")
