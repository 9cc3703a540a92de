"""``smartcity new-stream`` (issue 15 item 2) in a copy of the project: it writes the descriptor, the ingest
function with its test, the stack.yml entry (the store functions' topics too) and the JSON Schema; the copy's own
tests then pass with the new stream in it: its ingest function's scaffolded test, the checks that every stream
is in stack.yml and has its schema file and table. A bad name, a stream that exists and a bad field exit 2,
writing nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from smartcity.cli import app
from tests.project_copy import copy_project

FIELDS = "soundLevel:float:dB(A),stationId:str"


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


def new_stream(project: Path, *args: str):
    return CliRunner().invoke(app, ["new-stream", *args, "--root", str(project)])


def test_new_stream_scaffolds_a_stream_whose_tests_pass(project):
    done = new_stream(project, "noise-levels", "--fields", FIELDS, "--api-group", "traffic",
                      "--description", "noise monitoring stations' sound levels")
    assert done.exit_code == 0, done.output
    assert (project / "smartcity/streams/noise_levels.py").is_file()
    assert (project / "smartcity/events/schemas/city.noiselevels.observed.v1.schema.json").is_file()
    stack = yaml.safe_load((project / "stack.yml").read_text())
    assert stack["functions"]["ingest-noise-levels"]["handler"] == "./functions/ingest-noise-levels"
    assert all(entry["annotations"]["topic"].endswith(",noise-levels") for name, entry in stack["functions"].items()
               if name in ("store-timeseries", "store-latest", "store-documents", "archive-raw"))
    assert "# Storage: Kafka-triggered" in (project / "stack.yml").read_text()  # comments kept

    tests = ["functions/ingest-noise-levels/handler_test.py", "tests/unit/test_streams.py",
             "tests/unit/test_events_schema_files.py", "tests/unit/test_storage_tables.py"]
    where = subprocess.run([sys.executable, "-c", "import smartcity; print(smartcity.__file__)"], cwd=project,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(project)), where  # the copy's code is what its tests run
    run = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *tests], cwd=project,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for test in ("test_a_reading_is_published_with_its_zone", "test_a_reading_without_soundlevel_is_refused_naming_it"):
        assert f"ingest-noise-levels/handler_test.py::{test} PASSED" in run.stdout, run.stdout[-4000:]
    assert "test_the_migrated_table_has_the_columns_of_the_model[noise-levels] PASSED" in run.stdout


@pytest.mark.parametrize(("args", "named"), [
    (["Noise_Levels", "--fields", FIELDS], "NAME"),
    (["weather", "--fields", FIELDS], "NAME: the stream 'weather' exists already"),
    (["noise-levels", "--fields", "soundLevel:complex"], "--fields"),
    (["noise-levels", "--fields", "zone:str"], "--fields"),
    (["noise-levels", "--fields", FIELDS, "--api-group", "weather"], "--api-group"),
])
def test_new_stream_refuses_with_exit_2_writing_nothing(project, args, named):
    before = (project / "stack.yml").read_text()
    done = new_stream(project, *args)
    assert done.exit_code == 2 and named in done.output, done.output
    assert (project / "stack.yml").read_text() == before
    assert not (project / "functions/ingest-noise-levels").exists()
    assert not (project / "smartcity/streams/noise_levels.py").exists()
