"""Settings: one model read from the environment; the table of docs/settings.md is the model's own description."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.cli.settings import markdown_table
from smartcity.errors import ConfigurationError
from smartcity.settings import PROJECT_ROOT, Settings, get_settings, read_secret


def test_the_settings_page_lists_every_setting_with_its_default():
    assert markdown_table() in (PROJECT_ROOT / "docs" / "settings.md").read_text()


def test_the_environment_sets_a_setting_and_the_env_file_is_read(monkeypatch, tmp_path: Path):
    env_file = tmp_path / "smartcity.env"
    env_file.write_text("SMARTCITY_CACHE_URL=redis://127.0.0.1:6379/3\nSMARTCITY_GATEWAY_PORT=9999\n")
    monkeypatch.setenv("SMARTCITY_ENV_FILE", str(env_file))
    monkeypatch.setenv("SMARTCITY_GATEWAY_PORT", "8181")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.cache_url == "redis://127.0.0.1:6379/3"  # from the file
        assert settings.gateway_port == 8181  # the environment wins over the file
    finally:
        get_settings.cache_clear()


def test_a_missing_env_file_is_an_error_naming_it(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SMARTCITY_ENV_FILE", str(tmp_path / "absent.env"))
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="SMARTCITY_ENV_FILE"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_secret_is_read_from_its_file_and_a_missing_one_is_named(tmp_path: Path):
    settings = Settings(secrets_dir=tmp_path)
    (tmp_path / "pseudonym-key").write_text("s3cr3t\n")
    assert read_secret("pseudonym-key", settings).get_secret_value() == "s3cr3t"
    with pytest.raises(ConfigurationError, match="secret jwt-hs256-key.*SMARTCITY_SECRETS_DIR"):
        read_secret("jwt-hs256-key", settings)
