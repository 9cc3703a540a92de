"""Function images built for real, started from the image, answering a CloudEvent as the function does in-process.

Once per session, ``smartcity functions build``'s code builds the images of one HTTP function (ingest-weather) and
one Kafka-triggered function (store-timeseries) with buildah, on the local Debian base (made by mmdebstrap and
cached, as are the wheels and buildah's layers, so a later session rebuilds only what changed). Each image is
started with ``buildah run --isolation chroot`` sharing this machine's network (so its port is on loopback), as
its own user, with its command (``start.sh``: no of-watchdog here, so the function's own server on ``$port``), its
embedded backends in a folder mounted at ``/data``. The same call goes to the function loaded in this process on
a folder prepared the same way: the answers, and what each stored, are the same. With a stand-in watchdog
mounted, the image's command hands over to it.

Skipped, with buildah's own words, only where buildah cannot run (not installed and no root to install it, or
refused by the sandbox).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smartcity.runtime.readiness import NotReady, wait_until_ready
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.stack.base import StackError
from smartcity.stack.buildah import install_tools, remove_containers
from smartcity.stack.images import BuiltImage, build_images
from tests.packaging.replay import answers_in_process, answers_over_http
from tests.packaging.sample_calls import function_environment, sample_calls, settings_of, viewer_token, write_secrets
from tests.ports import free_port
from tests.stream_functions import prepared_settings

STACK_FILE = PROJECT_ROOT / "stack.yml"
BUILT = ("ingest-weather", "store-timeseries")  # an HTTP function and a Kafka-triggered one
DATA = Path("/data")  # where the image sees the folder of its backends
IMAGE_STACK_FILE = Path("/home/app/stack.yml")  # the template's copy
INGEST_IMAGE_LIMIT_MB = 300
START_TIMEOUT_S = 60.0

pytestmark = pytest.mark.timeout(1200)


def buildah_refusal() -> str | None:
    """Why buildah cannot run here, in its own words; None when it can."""
    try:
        install_tools()
    except StackError as error:
        return f"buildah is not installed and cannot be installed here: {error.reason}"
    probe = subprocess.run(["buildah", "from", "scratch"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"buildah cannot run here: {probe.stderr.strip()[-500:]}"
    remove_containers({probe.stdout.strip()})
    return None


@pytest.fixture(scope="session")
def images() -> dict[str, BuiltImage]:
    refusal = buildah_refusal()
    if refusal:
        pytest.skip(refusal)
    return {image.function: image for image in build_images(Settings(), STACK_FILE, BUILT)}


def prepared_folder(folder: Path) -> Path:
    """A migrated database with the reference tables, and the secrets, under ``folder``, writable by anyone (the
    image's own user)."""
    prepared_settings(folder)
    write_secrets(folder)
    subprocess.run(["chmod", "-R", "a+rwX", str(folder)], check=True)
    return folder


@contextmanager
def served(image: str, folder: Path, *volumes: str) -> Iterator[str]:
    """The image's command running in a working container of it, on loopback (``volumes`` mounted beside the
    folder); yields its base URL."""
    port = free_port()
    variables = {**function_environment(DATA, IMAGE_STACK_FILE), "port": str(port)}
    command = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", image], capture_output=True,
                                        text=True, check=True).stdout)["OCIv1"]["config"]["Cmd"]
    environment = [item for name, value in variables.items() for item in ("--env", f"{name}={value}")]
    container = subprocess.run(["buildah", "from", "--pull=never", image], capture_output=True, text=True,
                               check=True).stdout.strip()
    process = None
    try:
        process = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "--network", "host", "--volume", f"{folder}:{DATA}",
             *(item for volume in volumes for item in ("--volume", volume)), *environment, container, "--", *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, process)
        yield url
    finally:
        if process is not None:
            stop(process)
        remove_containers({container})


def stop(process: subprocess.Popen) -> None:
    """End ``buildah run`` and the function it runs (its process group), and wait for them."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    """Any answer will do (the image's root path need not exist); on failure, the command's output is shown."""
    try:
        wait_until_ready(url, START_TIMEOUT_S, process, accept=lambda status: True)
    except NotReady as error:
        output = process.stdout.read().decode() if error.returncode is not None else ""
        raise AssertionError(f"the image's command did not serve: {error}\n{output}") from None


def table_counts(folder: Path) -> dict[str, int]:
    """The number of rows of every table of the folder's SQLite database."""
    with sqlite3.connect(folder / "smartcity.db") as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


@pytest.mark.parametrize("name", BUILT)
def test_the_built_image_answers_as_the_function_in_process(images, name, tmp_path):
    in_image, in_process = prepared_folder(tmp_path / "image"), prepared_folder(tmp_path / "in-process")
    before = table_counts(in_process)
    call = sample_calls(viewer_token(in_process))[name]
    expected = answers_in_process(STACK_FILE, {name: call}, settings_of(in_process, STACK_FILE))[name]
    with served(images[name].image, in_image) as url:
        answer = answers_over_http(url, call)
    assert 200 <= expected["status"] < 300, expected
    assert answer == expected
    assert table_counts(in_image) == table_counts(in_process)
    if name == "store-timeseries":
        assert table_counts(in_process) != before  # it stored the reading: the comparison above means something


def test_an_ingest_image_stays_small(images):
    assert images["ingest-weather"].size_mb < INGEST_IMAGE_LIMIT_MB, images["ingest-weather"]


def test_the_image_hands_over_to_the_watchdog_when_it_has_one(images, tmp_path):
    """No of-watchdog can be had here: a stand-in at /usr/bin/fwatchdog notes that it ran, then serves as the
    watchdog's fprocess would. The image's command must run it rather than its own server."""
    folder = prepared_folder(tmp_path / "image")
    watchdog = tmp_path / "fwatchdog"
    watchdog.write_text(f'#!/bin/sh\necho "$fprocess" > {DATA}/watchdog-ran\n'
                        'exec python index.py --host 0.0.0.0 --port "$port"\n')
    watchdog.chmod(0o755)
    call = sample_calls(viewer_token(folder))["ingest-weather"]
    with served(images["ingest-weather"].image, folder, f"{watchdog}:/usr/bin/fwatchdog:ro") as url:
        assert answers_over_http(url, call)["status"] == 202
    assert (folder / "watchdog-ran").read_text().strip() == "python index.py"  # the template's fprocess
