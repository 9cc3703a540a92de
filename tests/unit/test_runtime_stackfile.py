"""stack.yml read strictly; annotations become trigger, output topic and delivery spec; function settings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from smartcity.errors import ConfigurationError
from smartcity.runtime.delivery import DeliverySpec, Failure, deliver, duration_seconds
from smartcity.runtime.loader import function_settings, load_stack
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import Settings
from tests.fixtures.functions.helpers import embedded_settings, write_stack

ENTRY = """\
version: 1.0
provider: {name: openfaas}
functions:
  fn:
    lang: smartcity-python3
    handler: ./fn
    image: fn:1
    build_args: {FUNCTION_NAME: fn}
"""


def _stack(tmp_path: Path, extra: str = "", entry: str = ENTRY) -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(entry + textwrap.indent(textwrap.dedent(extra), "    "))
    return path


def test_annotations_give_trigger_output_and_delivery(tmp_path):
    _, [spec] = read_stack(_stack(tmp_path, """\
        annotations:
          topic: a, b
          smartcity.io/output-topic: out
          smartcity.io/delivery-retry: 5
          smartcity.io/delivery-backoff-policy: linear
          smartcity.io/delivery-backoff-delay: PT1.5S
    """))
    assert spec.topics == ("a", "b") and spec.trigger == "kafka a,b"
    assert spec.output_topic == "out"
    assert spec.delivery == DeliverySpec(retry=5, backoff_policy="linear", backoff_delay="PT1.5S")
    assert spec.consumer_group == "smartcity-fn"
    assert spec.handler_dir == (tmp_path / "fn").resolve()


def test_no_topic_means_an_http_trigger(tmp_path):
    _, [spec] = read_stack(_stack(tmp_path))
    assert spec.trigger == "http /function/fn" and spec.delivery == DeliverySpec()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("enviroment: {A: b}\n", "enviroment"),
        ("annotations: {smartcity.io/retry: '3'}\n", "annotations"),
        ("annotations: {smartcity.io/delivery-backoff-delay: 3s}\n", "backoff_delay"),
        ("annotations: {smartcity.io/delivery-backoff-policy: random}\n", "backoff_policy"),
        ("annotations: {topic: dead-letter}\n", "dead-letter-topic"),
    ],
)
def test_mistakes_are_errors_naming_the_key(tmp_path, extra, named):
    with pytest.raises(ConfigurationError, match=named):
        read_stack(_stack(tmp_path, extra))


def test_function_name_must_be_a_kubernetes_name_and_baked_in(tmp_path):
    with pytest.raises(ConfigurationError, match="build_args"):
        read_stack(_stack(tmp_path, entry=ENTRY.replace("{FUNCTION_NAME: fn}", "{FUNCTION_NAME: other}")))
    with pytest.raises(ConfigurationError, match="lowercase"):
        read_stack(_stack(tmp_path, entry=ENTRY.replace("  fn:", "  Fn_1:")))


def test_environment_files_then_environment(tmp_path):
    (tmp_path / "env.yml").write_text("environment: {A: from-file, B: from-file}\n")
    _, [spec] = read_stack(_stack(tmp_path, "environment_file: [env.yml]\nenvironment: {B: inline}\n"))
    assert spec.environment == {"A": "from-file", "B": "inline"}


def test_smartcity_variables_override_settings_for_that_function_only(tmp_path):
    _, [spec] = read_stack(_stack(tmp_path, "environment: {SMARTCITY_TOPIC_PARTITIONS: '7', OTHER: x}\n"))
    base = Settings(topic_partitions=2)
    assert function_settings(spec, base).topic_partitions == 7
    assert base.topic_partitions == 2
    _, [bad] = read_stack(_stack(tmp_path, "environment: {SMARTCITY_NO_SUCH_THING: '1'}\n"))
    with pytest.raises(ConfigurationError, match="SMARTCITY_NO_SUCH_THING"):
        function_settings(bad, base)


def test_loading_checks_names_and_handler_files(tmp_path):
    stack = write_stack(tmp_path)
    settings = embedded_settings(tmp_path)
    assert [f.name for f in load_stack(stack, settings, ["echo", "hello-http"])] == ["echo", "hello-http"]
    with pytest.raises(ConfigurationError, match="known"):
        load_stack(stack, settings, ["nope"])
    with pytest.raises(ConfigurationError, match="handler.py"):
        load_stack(_stack(tmp_path), settings)


def test_the_project_stack_file_loads():
    functions = load_stack(Path(__file__).resolve().parents[2] / "stack.yml", Settings())
    assert "dead-letter-archive" in [f.name for f in functions]


def test_iso_durations_and_knative_backoff():
    assert duration_seconds("PT0.2S") == pytest.approx(0.2)
    assert duration_seconds("PT1M30S") == 90
    assert duration_seconds("P1DT1H") == 90000
    for bad in ("", "P", "PT", "0.2s", "PTS"):
        with pytest.raises(ValueError):
            duration_seconds(bad)
    exponential = DeliverySpec(backoff_delay="PT1S")
    linear = DeliverySpec(backoff_delay="PT1S", backoff_policy="linear")
    assert [exponential.backoff_seconds(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert [linear.backoff_seconds(n) for n in (1, 2, 3)] == [1, 2, 3]


def test_deliver_retries_then_gives_up_with_the_last_error():
    waits, calls = [], []

    def attempt():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"try {len(calls)}")
        return "ok"

    spec = DeliverySpec(retry=3, backoff_delay="PT0.1S")
    assert deliver(attempt, spec, sleep=waits.append) == "ok"
    assert waits == pytest.approx([0.2, 0.4])

    failure = deliver(lambda: 1 / 0, DeliverySpec(retry=2), sleep=lambda _: None)
    assert isinstance(failure, Failure) and failure.attempts == 3 and not failure.stopped
    stopped = deliver(lambda: 1 / 0, DeliverySpec(retry=2), should_stop=lambda: True, sleep=lambda _: None)
    assert stopped.stopped and stopped.attempts == 1
