"""Ctrl-C on `smartcity demo` while its Spark jobs run: a quiet stop, as a newcomer expects, after a quiet start.

The demo runs as its own process group, as in a terminal, and gets SIGINT the way Ctrl-C sends it (to the whole
group: Python and the Spark JVM it launched) once its streaming jobs have written windows, so that micro-batches
are in flight. It must then stop its pieces, say "demo stopped" and exit 0, with no Java stack trace, no Python
traceback and none of the errors Spark logs when a query is cancelled mid-batch (SPARK_JOB_CANCELLED,
RejectedExecutionException, or the StackOverflowError of Spark's interruption check on a long py4j message).
Before that, Spark's start prints none of its notices (its default log profile, the loopback address, the
native-Hadoop library, "Setting default log level", pyspark's pandas warning): only the JVM's own line on the
incubator module Spark 4 loads, which no option silences. Spark's start makes this test take a minute or two.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port

pytestmark = pytest.mark.e2e

NOISE = re.compile(r"^\s*at [\w$.<>/]+\(|Traceback|Exception|StackOverflowError|SPARK_JOB_CANCELLED|ERROR|WARN",
                   re.MULTILINE)

START_NOISE = re.compile(r"^(?!WARNING: Using incubator modules).*(WARN|log4j|Warning|Setting default log level)",
                         re.MULTILINE)


def wait_for_output(log: Path, pattern: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the demo exited ({process.returncode}):\n{log.read_text()[-3000:]}"
        if re.search(pattern, log.read_text()):
            return
        time.sleep(1)
    raise AssertionError(f"no {pattern!r} within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def test_ctrl_c_stops_the_demo_and_its_streaming_jobs_quietly(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env.update(SMARTCITY_GATEWAY_PORT=str(free_port()), SMARTCITY_STREAMING_METRICS_PORT=str(free_port()),
               SMARTCITY_TRIGGER_METRICS_PORT=str(free_port()), SMARTCITY_STREAMING_TRIGGER_S="2")
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "smartcity.cli", "demo", "--duration", "10m", "--data-dir", str(tmp_path / "data"),
             "--status-every", "3", "--no-history", "--no-training"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_output(log, r"streaming: traffic", demo, 240)
            wait_for_output(log, r"; [1-9]\d* sensor 5-min windows", demo, 240)  # micro-batches are being written
            before = log.stat().st_size
            os.killpg(demo.pid, signal.SIGINT)
            returncode = demo.wait(timeout=120)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
    start = START_NOISE.findall(log.read_text()[:before])
    assert not start, f"the demo's start printed {start}"
    output = log.read_text()[before:]  # what Ctrl-C made the demo print
    stopping = output[output.index("stopping (Ctrl-C)"):]
    assert returncode == 0, stopping[-3000:]
    assert stopping.rstrip().endswith("demo stopped"), stopping[-3000:]
    noise = NOISE.findall(output)
    assert not noise, f"{len(noise)} noisy lines, e.g. {noise[:5]}; after Ctrl-C:\n{stopping[:3000]}"
    assert len(stopping.splitlines()) <= 3, stopping  # "stopping (Ctrl-C)", "demo stopped", nothing between
