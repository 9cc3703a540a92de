"""The Helm chart's functions.yaml is generated from stack.yml and up to date; its values name every setting."""

from __future__ import annotations

import yaml

from smartcity.runtime import helm_values
from smartcity.runtime.knative import dead_letter_sink_name
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import PROJECT_ROOT, Settings

STACK = PROJECT_ROOT / "stack.yml"
CHART = PROJECT_ROOT / "infra" / "helm" / "smartcity"


def test_committed_functions_file_is_what_stack_yml_generates():
    assert not helm_values.stale(STACK, helm_values.HELM_VALUES_FILE)


def test_stale_when_the_stack_changes(tmp_path):
    out = tmp_path / "functions.yaml"
    assert helm_values.stale(STACK, out)  # missing
    _, specs = read_stack(STACK)
    out.write_text(helm_values.render(specs[1:]))
    assert helm_values.stale(STACK, out)
    out.write_text(helm_values.render(specs))
    assert not helm_values.stale(STACK, out)


def test_each_function_carries_its_stack_entry():
    _, specs = read_stack(STACK)
    values = yaml.safe_load(helm_values.render(specs))
    assert list(values["functions"]) == [spec.name for spec in specs]
    for spec in specs:
        entry = values["functions"][spec.name]
        assert entry["image"] == spec.entry.image
        assert entry["environment"]["SMARTCITY_FUNCTION_NAME"] == spec.name
        assert entry["secrets"] == spec.entry.secrets
        assert entry["scale"]["max"] == int(spec.entry.labels["com.openfaas.scale.max"])
        if spec.topics:
            kafka = entry["kafka"]
            assert kafka["topics"] == list(spec.topics)
            assert kafka["consumerGroup"] == spec.consumer_group
            assert kafka["delivery"]["retry"] == spec.delivery.retry
            assert kafka["delivery"]["backoffDelay"] == spec.delivery.backoff_delay
            assert kafka["delivery"]["deadLetterSink"] in values["deadLetterSinks"]
        else:
            assert "kafka" not in entry
    dead_letter_topics = ("dead-letter", "dead-letter-unarchived")
    assert values["deadLetterSinks"] == {dead_letter_sink_name(topic): topic for topic in dead_letter_topics}


def test_values_name_every_setting_and_nothing_else():
    settings = yaml.safe_load((CHART / "values.yaml").read_text())["settings"]
    assert sorted(settings) == sorted(Settings.model_fields)


def test_values_settings_are_valid_settings():
    """What the ConfigMap would hand a container parses as the platform's settings (nulls are left out)."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["settings"]
    production = {**defaults, **yaml.safe_load((CHART / "values-production.yaml").read_text())["settings"]}
    for given in (defaults, production):
        Settings(**{name: value for name, value in given.items() if value is not None})


def test_secrets_are_every_secret_file_the_platform_reads():
    from smartcity.backends.database.postgres import PASSWORD_SECRET
    from smartcity.backends.objects.s3 import ACCESS_KEY_SECRET, SECRET_KEY_SECRET
    from smartcity.privacy import PSEUDONYM_KEY_SECRET

    secrets = yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]
    _, specs = read_stack(STACK)
    expected = {PASSWORD_SECRET, ACCESS_KEY_SECRET, SECRET_KEY_SECRET, PSEUDONYM_KEY_SECRET}
    expected |= {secret for spec in specs for secret in spec.entry.secrets}
    assert set(secrets) == expected
