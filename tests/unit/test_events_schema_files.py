"""The committed JSON Schemas in smartcity/events/schemas/ are what `smartcity schemas export` writes today."""

from __future__ import annotations

from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.cli.schemas import SCHEMAS_DIR
from smartcity.events import STREAMS


def test_reexporting_gives_the_committed_files(tmp_path):
    result = CliRunner().invoke(app, ["schemas", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(stream.schema_file for stream in STREAMS.values())
    assert written == sorted(path.name for path in SCHEMAS_DIR.glob("*.schema.json"))
    for name in written:
        assert (tmp_path / name).read_text() == (SCHEMAS_DIR / name).read_text(), f"{name}: run `smartcity schemas export`"
