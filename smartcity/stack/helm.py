"""Helm v4, built from its Go module (the Go module proxy serves ``helm.sh/helm/v4``) into the cache.

The binary is ``<cache_dir>/bin/helm-<version>``: built once by ``go install`` (minutes: Helm and the Kubernetes
client libraries are compiled), then reused as it is, like FerretDB's. Used to lint and render
``infra/helm/smartcity/`` (docs/deployment.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from smartcity.settings import Settings
from smartcity.stack.base import StackError

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"
GO_FALLBACK = Path("/usr/local/go/bin/go")  # where the Go tarball installs it, if it is not on PATH
INSTALL_TIMEOUT_S = 1800


def helm_binary(settings: Settings) -> Path:
    return settings.cache_dir / "bin" / f"helm-{HELM_VERSION}"


def _go() -> str:
    go = shutil.which("go") or (str(GO_FALLBACK) if GO_FALLBACK.is_file() else None)
    if go is None:
        raise StackError("helm", "needs Go to build Helm: install it from https://go.dev/dl/ (1.24 or newer)")
    return go


def _go_run(*args: str, env: dict[str, str] | None = None) -> str:
    """``go <args>``'s output; a failure raises :class:`StackError` with its last lines."""
    result = subprocess.run([_go(), *args], capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_S,
                            env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StackError("helm", f"go {' '.join(args)} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def install_helm(settings: Settings) -> Path:
    """The cached Helm binary; built with ``go install`` the first time (a failure raises :class:`StackError`)."""
    binary = helm_binary(settings)
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Built into a scratch GOBIN and moved into place whole, so that an interrupted build leaves no binary.
    with tempfile.TemporaryDirectory(prefix="helm-", dir=binary.parent) as gobin:
        _go_run("install", f"{HELM_MODULE}@{HELM_VERSION}", env={**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"})
        Path(gobin, "helm").replace(binary)
    return binary


# The schemas the chart's manifests are validated against, from the same proxy: the Kubernetes API's OpenAPI v3
# documents (api/openapi-spec/v3 of k8s.io/kubernetes, the version of the client libraries Helm is built with)
# and Knative Serving's CRDs (config/core/300-resources). Knative Eventing's modules are not served here.
KUBERNETES_MODULE = ("k8s.io/kubernetes", "v1.37.2")
KNATIVE_SERVING_MODULE = ("knative.dev/serving", "v0.51.0")


def go_module_dir(module: str, version: str) -> Path:
    """The folder of a Go module in the module cache, downloaded the first time (``go mod download``)."""
    return Path(json.loads(_go_run("mod", "download", "-json", f"{module}@{version}"))["Dir"])
