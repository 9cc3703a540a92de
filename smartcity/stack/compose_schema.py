"""The compose-spec JSON schema, from its Go module, cached; and the checks of ``infra/compose.yaml`` against it.

``schema/compose-spec.json`` of ``github.com/compose-spec/compose-go/v2`` (the library ``docker compose`` loads
files with) is fetched once through the Go module proxy (``go mod download``, like Helm in
:mod:`smartcity.stack.helm`) and kept as ``<cache_dir>/schemas/compose-spec-<version>.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.stack.helm import go_module_dir

COMPOSE_GO_MODULE = ("github.com/compose-spec/compose-go/v2", "v2.16.2")
COMPOSE_FILE = PROJECT_ROOT / "infra" / "compose.yaml"
SETTING_NAME = re.compile(r"\bSMARTCITY_[A-Z0-9_]+\b")


def compose_schema(settings: Settings) -> dict[str, Any]:
    """The compose-spec schema of :data:`COMPOSE_GO_MODULE`, downloaded from the Go proxy the first time."""
    module, version = COMPOSE_GO_MODULE
    cached = settings.cache_dir / "schemas" / f"compose-spec-{version}.json"
    if not cached.is_file():
        text = (go_module_dir(module, version) / "schema" / "compose-spec.json").read_text()
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(cached)  # whole or not at all
    return json.loads(cached.read_text())


def schema_errors(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every place where ``document`` breaks the schema, as ``path: message``."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda error: list(map(str, error.path)))]


def setting_names(path: Path = COMPOSE_FILE) -> set[str]:
    """Every ``SMARTCITY_*`` name the file uses (settings given to containers, and interpolated ones)."""
    return set(SETTING_NAME.findall(path.read_text()))
