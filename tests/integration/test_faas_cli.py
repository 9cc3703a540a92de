"""faas-cli itself reads stack.yml: ``build --shrinkwrap`` lays out every function's build context from the
project's template, and ``generate`` turns the stack into OpenFaaS Function resources.

faas-cli is installed from the Go module proxy by ``infra/local/install-faas-cli.sh``. Where the proxy refuses
to serve the module (as the one this project's machines reach does), faas-cli cannot exist here and the test
says so: only that refusal skips, recognised by the very line ``go install`` prints for it (the proxy answering
the request for faas-cli's version info with 403, 404 or 410); any other failure fails it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from smartcity.runtime.stackfile import read_stack
from smartcity.settings import PROJECT_ROOT, get_settings

INSTALL = PROJECT_ROOT / "infra" / "local" / "install-faas-cli.sh"
# go install's message when the module proxy will not serve faas-cli's version (403: refused here; 404/410: gone).
PROXY_REFUSAL = re.compile(r"reading https?://\S+/github\.com/openfaas/faas-cli/@v/v[0-9.]+\.info: "
                           r"(403 Forbidden|404 Not Found|410 Gone)")


@pytest.fixture(scope="module")
def faas_cli() -> str:
    result = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SMARTCITY_CACHE_DIR": str(get_settings().cache_dir)})
    if result.returncode != 0:
        refusal = PROXY_REFUSAL.search(result.stderr)
        if refusal:
            pytest.skip(f"faas-cli cannot be installed on this machine: the Go module proxy refuses it "
                        f"({refusal.group(0)})")
        pytest.fail(f"install-faas-cli.sh failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """What faas-cli reads, copied: it writes ./build/ and looks for templates in ./template/."""
    root = tmp_path_factory.mktemp("faas")
    for name in ("stack.yml", "pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    for name in ("smartcity", "functions"):
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_ROOT / "templates", root / "template")
    return root


def test_build_shrinkwrap_lays_out_every_function_with_the_platform(faas_cli, project_copy):
    result = subprocess.run([faas_cli, "build", "--shrinkwrap", "-f", "stack.yml"], cwd=project_copy,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    _, specs = read_stack(project_copy / "stack.yml")
    for spec in specs:
        context = project_copy / "build" / spec.name
        for expected in ("Dockerfile", "index.py", "stack.yml", "pyproject.toml", "function/handler.py",
                         "smartcity/runtime/entrypoint.py"):
            assert (context / expected).is_file(), f"{spec.name}: {expected} missing from its build context"
        assert "fwatchdog" in (context / "Dockerfile").read_text()


def test_generate_gives_a_function_resource_per_entry(faas_cli, project_copy):
    result = subprocess.run([faas_cli, "generate", "-f", "stack.yml"], cwd=project_copy,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    resources = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(result.stdout) if doc}
    _, specs = read_stack(project_copy / "stack.yml")
    assert set(resources) == {spec.name for spec in specs}
    for spec in specs:
        resource = resources[spec.name]
        assert resource["kind"] == "Function"
        assert resource["spec"]["image"] == spec.entry.image
        assert (resource["spec"].get("secrets") or []) == spec.entry.secrets
