"""A failed micro-batch write reaches Spark as a short error, which Spark's interruption check can read.

Spark runs StreamExecution.PROXY_ERROR (``...calling((.|\\r\\n|\\r|\\n)*)(java.lang.InterruptedException|...)``) over
the message of every py4j error a foreachBatch function raises; the group recurses once per character, so the
traceback of a Python error quoting a Java stack trace overflowed the stream execution thread's stack
(``java.lang.StackOverflowError`` in ``java.util.regex``), which killed the query. The JVM check runs Spark's own
pattern (tests/fixtures/spark/ProxyErrorProbe.java) on both messages.
"""

from __future__ import annotations

import subprocess
import traceback
from pathlib import Path

import pyspark
import pytest

from streaming.runner import BATCH_ERROR_CHARS, BatchWriteFailed, Job, _reporting, summarized

PROBE = Path(__file__).parents[1] / "fixtures" / "spark" / "ProxyErrorProbe.java"
JARS = Path(pyspark.__file__).parent / "jars"
CANCELLED = (": org.apache.spark.SparkException: [SPARK_JOB_CANCELLED] Job 12 cancelled part of cancelled job group "
             "3f1e0c52-8d0a-4a51-9d55-1b2e39a0c6f4 SQLSTATE: XXKDA")


class Py4JJavaError(Exception):
    """What pyspark raises when a JVM call fails, with the text py4j gives it (its str asks the JVM for it)."""


Py4JJavaError.__module__ = "py4j.protocol"


def java_error() -> Py4JJavaError:
    """A collect cancelled by a stopping query: the error, 300 stack frames, its interrupted root cause."""
    frames = "".join(f"\tat org.apache.spark.scheduler.DAGScheduler.frame{n}(DAGScheduler.scala:{n})\n" for n in range(300))
    return Py4JJavaError(f"An error occurred while calling o231.collectToPython.\n{CANCELLED}\n{frames}"
                         f"Caused by: java.lang.InterruptedException\n\tat java.base/Object.wait(Native Method)\n"
                         "\t... 42 more\n")


def proxy_message(error: BaseException) -> str:
    """The message of the py4j error the JVM gets when the Python callback raises ``error`` (py4j's format)."""
    try:
        raise error
    except BaseException:
        return "An exception was raised by the Python Proxy. Return Message: " + traceback.format_exc()


def test_a_summary_keeps_the_error_lines_and_drops_the_stack_frames():
    summary = summarized(java_error())
    assert summary.splitlines() == ["py4j.protocol.Py4JJavaError: An error occurred while calling o231.collectToPython.",
                                    CANCELLED, "Caused by: java.lang.InterruptedException"]
    causes = "\n".join(f"Caused by: java.lang.IllegalStateException: cause {n} {'x' * 300}" for n in range(50))
    long = summarized(Py4JJavaError(f"An error occurred while calling o1.collect.\n{CANCELLED}\n{causes}\n"
                                    "Caused by: java.io.InterruptedIOException"))
    assert len(long) <= BATCH_ERROR_CHARS
    assert CANCELLED in long and long.endswith("Caused by: java.io.InterruptedIOException")
    assert summarized(ValueError("bad row")) == "builtins.ValueError: bad row"


    class Unreadable(Exception):
        def __str__(self) -> str:
            raise ConnectionError("the JVM is gone")

    assert summarized(Unreadable()).endswith("Unreadable: (its message could not be read)")


def test_a_failed_write_raises_its_summary_to_spark():
    def write(ctx, batch, batch_id):
        raise java_error()

    with pytest.raises(BatchWriteFailed) as raised:
        _reporting(Job("traffic", (), "update", build=None, write=write), write)(None, None, 7)
    assert str(raised.value) == summarized(java_error())
    assert raised.value.__suppress_context__  # the long original stays out of the traceback the JVM gets


def test_sparks_interruption_check_reads_the_summary_where_it_overflowed_on_the_whole_error(tmp_path: Path):
    def write(ctx, batch, batch_id):
        raise java_error()

    before = proxy_message(java_error())  # what the JVM got before: the whole traceback, frames and all
    try:
        _reporting(Job("traffic", (), "update", build=None, write=write), write)(None, None, 7)
    except BatchWriteFailed as error:
        after = proxy_message(error)
    assert len(before) > 20_000 and len(after) < 2_000
    files = []
    for name, message in (("before", before), ("after", after)):
        files.append(tmp_path / f"{name}.txt")
        files[-1].write_text(message)
    probe = subprocess.run(["java", "-cp", f"{JARS}/*", str(PROBE), *map(str, files)], capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.split() == ["StackOverflowError", "interruption"]
