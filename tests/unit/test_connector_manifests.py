"""infra/knative/connectors/: one ContainerSource per connector kind, whose command line `smartcity connect` takes,
whose settings exist, whose sink is an ingest function of stack.yml, and whose image the Dockerfile builds."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.connectors import KINDS
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import PROJECT_ROOT, Settings
from tests.ports import free_port

FOLDER = PROJECT_ROOT / "infra" / "knative" / "connectors"


def documents(kind: str) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((FOLDER / f"{kind}.yaml").read_text()) if doc}


def test_every_kind_has_a_container_source_and_nothing_else_is_there():
    assert sorted(path.stem for path in FOLDER.glob("*.yaml")) == sorted(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_sources_container_runs_the_connector_with_real_settings_into_an_ingest_function(kind):
    source = documents(kind)["ContainerSource"]
    [container] = source["spec"]["template"]["spec"]["containers"]
    assert container["image"] in (FOLDER / "Dockerfile").read_text()
    assert container["args"][:3] == ["connect", kind, "$(FEED_URL)"]
    env = {item["name"]: item["value"] for item in container["env"]}
    settings = {name[len("SMARTCITY_"):].lower() for name in env if name.startswith("SMARTCITY_")}
    assert settings and settings <= set(Settings.model_fields)
    assert "{topic}" in env["SMARTCITY_CONNECTOR_GATEWAY_URL"]
    functions = {spec.name for spec in read_stack(PROJECT_ROOT / "stack.yml")[1]}
    sink = source["spec"]["sink"]["ref"]
    assert sink["kind"] == "Service" and sink["name"].startswith("ingest-") and sink["name"] in functions


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_command_line_of_a_source_is_one_smartcity_connect_takes(kind, tmp_path, monkeypatch):
    """With FEED_URL set to a closed loopback port, the poll fails (exit 1), but the arguments are taken (not 2)."""
    docs = documents(kind)
    [container] = docs["ContainerSource"]["spec"]["template"]["spec"]["containers"]
    arguments = [arg.replace("$(FEED_URL)", f"http://127.0.0.1:{free_port()}/feed") for arg in container["args"]]
    if "--mapping" in arguments:  # the ConfigMap's mapping file, where the pod mounts it
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text(docs["ConfigMap"]["data"]["mapping.yaml"])
        arguments[arguments.index("--mapping") + 1] = str(mapping)
    monkeypatch.setenv("SMARTCITY_BUS_URL", f"file://{tmp_path}/bus")
    result = CliRunner().invoke(app, [*arguments, "--once"])
    assert result.exit_code == 1, result.output
    assert "ConnectError" in result.output
