"""``smartcity simulate``: options taken from their ``SMARTCITY_SIMULATOR_*`` variables act as the flags do."""

from __future__ import annotations

from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.settings import get_settings


def test_a_replay_named_by_its_variable_needs_the_pseudonym_key_before_it_starts(tmp_path, monkeypatch):
    # A recording may hold personal streams whatever SMARTCITY_SIMULATOR_STREAMS says, as with --replay.
    (tmp_path / "secrets").mkdir()
    (tmp_path / "empty.jsonl").write_text("")
    monkeypatch.setenv("SMARTCITY_BUS_URL", f"file://{tmp_path}/bus")
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("SMARTCITY_SIMULATOR_STREAMS", "weather")
    monkeypatch.setenv("SMARTCITY_SIMULATOR_REPLAY", str(tmp_path / "empty.jsonl"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["simulate", "--speed", "0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "pseudonym-key" in result.output
