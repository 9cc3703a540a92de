"""The wheel, installed as a function image installs it, serves every function of stack.yml.

The wheel is built from a copy of the checkout and installed into fresh virtual environments outside it, which
load every function through the real loader and answer one valid call each (:mod:`tests.packaging.replay`, run
by the venv's own python, on embedded backends under a temporary folder whose database the venv's own
``smartcity db`` migrated). Two environments:

* ``runtime`` only: the functions whose stack.yml ``build_args.PLATFORM_EXTRAS`` is ``runtime`` answer exactly as
  they do in this process (with every extra); each of the others refuses with the install command of the extra
  it lacks (at load, or at its first event where its handler imports the extra's modules lazily).
* every extra a function image installs (``api``, ``archive``, ``models`` with ``runtime``): every function
  answers exactly as in this process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from smartcity.settings import PROJECT_ROOT
from smartcity.stack.images import platform_extras
from smartcity.runtime.stackfile import read_stack
from tests.packaging import replay
from tests.packaging.sample_calls import (
    function_environment, sample_calls, settings_of, viewer_token, write_calls, write_secrets,
)
from tests.packaging.wheel import build_wheel, outside_environment, run, venv_with, wheel_files

STACK_FILE = PROJECT_ROOT / "stack.yml"
REPLAY = Path(replay.__file__)
# The packages of the wheel: every file of theirs in the checkout (code and data) must be in it.
PACKAGES = ("smartcity", "models", "streaming", "grafana")
# Data files the package opens by their path; a wheel without them fails on its first event.
PACKAGE_DATA = ("smartcity/city/data/cologne-nippes.json", "smartcity/city/data/gtfs-cologne-nippes.zip",
                "smartcity/events/schemas/city.traffic.flow.observed.v1.schema.json")

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def extras_by_function() -> dict[str, tuple[str, ...]]:
    return {spec.name: platform_extras(spec.entry) for spec in read_stack(STACK_FILE)[1]}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> dict[str, dict]:
    """Every function's answer in this process (the checkout, every extra), from a folder made like the venvs'."""
    folder = tmp_path_factory.mktemp("in-process")
    calls = prepared_calls(folder, Path(sys.executable).parent / "smartcity")
    return replay.answers_in_process(STACK_FILE, replay.read_calls(calls), settings_of(folder, STACK_FILE))


def prepared_calls(folder: Path, smartcity_command: Path) -> Path:
    """Secrets and a migrated database with the city's reference tables under ``folder`` (by ``smartcity db`` of
    the environment under test), and the calls file; returns the calls file."""
    write_secrets(folder)
    environment = outside_environment(**function_environment(folder, STACK_FILE))
    for command in ("migrate", "load-reference"):
        run([smartcity_command, "db", command], env=environment, cwd=folder)
    return write_calls(folder / "calls.json", sample_calls(viewer_token(folder)))


def answers_in_venv(python: Path, folder: Path) -> dict[str, dict]:
    """Every function's answer in the virtual environment of ``python``, run from a folder outside the checkout."""
    calls = prepared_calls(folder, python.parent / "smartcity")
    environment = outside_environment(**function_environment(folder, STACK_FILE))
    where = run([python, "-c", "import smartcity; print(smartcity.__file__)"], env=environment, cwd=folder).stdout
    assert where.startswith(str(python.parent.parent)), f"the venv imports smartcity from {where}"
    return json.loads(run([python, REPLAY, STACK_FILE, calls], env=environment, cwd=folder).stdout)


def test_the_wheel_holds_every_file_of_its_packages(wheel):
    source = wheel.parent.parent / "source"
    in_source = {path.relative_to(source).as_posix() for package in PACKAGES for path in (source / package).rglob("*")
                 if path.is_file() and "__pycache__" not in path.parts}
    in_wheel = {name for name in wheel_files(wheel) if name.split("/")[0] in PACKAGES}
    assert set(PACKAGE_DATA) <= in_source
    assert sorted(in_source - in_wheel) == []
    assert not any(name.startswith(("tests/", "functions/", "bench/")) for name in wheel_files(wheel))


def test_runtime_extra_alone_serves_the_runtime_functions(wheel, in_process, extras_by_function, tmp_path):
    python = venv_with(tmp_path / "venv", wheel, "runtime")
    answers = answers_in_venv(python, tmp_path / "functions")
    assert set(answers) == set(extras_by_function)
    for name, extras in extras_by_function.items():
        needed = [extra for extra in extras if extra != "runtime"]
        if not needed:
            assert answers[name] == in_process[name], name
            assert 200 <= answers[name]["status"] < 300, (name, answers[name])
        else:
            # At load (an import of its handler), or at its first event (a lazy import): a 500 problem then.
            message = answers[name].get("missing_extra") or answers[name]["body"]["detail"]
            assert any(f"pip install 'smartcity[{extra}]'" in message for extra in needed), (name, answers[name])


def test_every_function_with_its_image_extras(wheel, in_process, extras_by_function, tmp_path):
    every_extra = sorted({extra for extras in extras_by_function.values() for extra in extras})
    assert "torch" not in every_extra  # never in a function image
    python = venv_with(tmp_path / "venv", wheel, ",".join(every_extra))
    answers = answers_in_venv(python, tmp_path / "functions")
    assert answers == in_process
    assert all(200 <= answer["status"] < 300 for answer in answers.values()), answers
