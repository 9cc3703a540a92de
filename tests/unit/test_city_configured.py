"""The configured city: looked up once per settings object, and a new one with new settings."""

from smartcity.city import configured_city, save_city
from smartcity.settings import get_settings


def test_the_configured_city_is_looked_up_once_and_follows_new_settings(tmp_path, monkeypatch):
    first = configured_city()
    assert configured_city() is first
    other = save_city(first.model_copy(update={"name": "Elsewhere"}), tmp_path / "city.json")
    monkeypatch.setenv("SMARTCITY_CITY_FILE", str(other))
    get_settings.cache_clear()
    try:
        assert configured_city().name == "Elsewhere"
    finally:
        monkeypatch.delenv("SMARTCITY_CITY_FILE")
        get_settings.cache_clear()
    assert configured_city().name == first.name
