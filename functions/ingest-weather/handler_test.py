"""ingest-weather through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

import pytest

from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("weather")


def test_a_reading_in_other_units_is_published_in_the_models(ingest):
    sent = {k: v for k, v in reading("weather", id="roof-2").items() if k not in ("zone", "temperature")}
    answer = ingest.post(sent | {"temperature[K]": 285.65, "atmosphericPressure[kPa]": 101.3, "precipitation": 0.4})
    [data] = assert_published(ingest, answer)
    assert data["id"] == "urn:ngsi-ld:WeatherObserved:roof-2"
    assert data["temperature"] == pytest.approx(12.5) and data["atmosphericPressure"] == pytest.approx(1013.0)
    assert data["zone"] == reading("weather")["zone"]  # from the location
    assert (data["precipitation"], data["weatherType"]) == (0.4, "cloudy")


def test_a_humidity_in_percent_without_its_unit_is_refused(ingest):
    reasons = assert_refused(ingest, [reading("weather"), reading("weather", relativeHumidity=45)], "relativeHumidity",
                             accepted=1)
    assert "1" in reasons["relativeHumidity"]  # the bound it broke
