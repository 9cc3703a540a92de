"""Loading functions named in ``stack.yml``: import each ``handler.py``, apply its settings, give it a context.

A function's folder is imported as a package of its own (so ``handler.py`` may ``from .models import X``, as in
the OpenFaaS template where the folder becomes ``function/``). ``SMARTCITY_*`` variables of its
``environment:`` override the process settings for that function only; any other variable is the function's own
(``context.env(name)``). A ``SMARTCITY_*`` variable that is not a setting is an error, not a silent no-op.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from smartcity.errors import ConfigurationError
from smartcity.events import errors_by_field
from smartcity.runtime.context import Backends, Context
from smartcity.runtime.function import CloudEventHandler, HttpHandler, handler_of
from smartcity.runtime.stackfile import FunctionSpec, read_stack
from smartcity.settings import Settings

SETTINGS_PREFIX = "SMARTCITY_"


@dataclass
class LoadedFunction:
    spec: FunctionSpec
    handler: CloudEventHandler | HttpHandler
    context: Context
    app: Any = None  # the ASGI app of an HTTP function

    @property
    def name(self) -> str:
        return self.spec.name


def function_settings(spec: FunctionSpec, base: Settings) -> Settings:
    """The process settings with the function's ``SMARTCITY_*`` environment applied."""
    overrides: dict[str, str] = {}
    for variable, value in spec.environment.items():
        if variable.startswith(SETTINGS_PREFIX):
            field = variable[len(SETTINGS_PREFIX):].lower()
            if field not in Settings.model_fields:
                raise ConfigurationError(f"functions.{spec.name}.environment.{variable}", "is not a setting")
            overrides[field] = value
    if not overrides:
        return base
    try:
        return Settings(**{**base.model_dump(), **overrides})
    except ValidationError as error:
        raise ConfigurationError(f"functions.{spec.name}.environment", str(errors_by_field(error))) from None


def import_handler(name: str, handler_dir: Path) -> types.ModuleType:
    """Import ``<handler_dir>/handler.py`` as ``<package>.handler``, its folder a package named after it."""
    if not (handler_dir / "handler.py").is_file():
        raise ConfigurationError(f"functions.{name}.handler", f"{handler_dir / 'handler.py'} does not exist")
    digest = hashlib.sha1(str(handler_dir).encode()).hexdigest()[:8]
    package_name = f"smartcity_function_{name.replace('-', '_')}_{digest}"
    if package_name not in sys.modules:
        package = types.ModuleType(package_name)
        package.__path__ = [str(handler_dir)]
        package.__file__ = str(handler_dir / "__init__.py")
        sys.modules[package_name] = package
    return importlib.import_module(f"{package_name}.handler")


def load_function(
    spec: FunctionSpec, settings: Settings, backends: Backends | None = None, handler_dir: Path | None = None
) -> LoadedFunction:
    """Import one function's handler and build its context (and, for an HTTP function, its app)."""
    module = import_handler(spec.name, handler_dir or spec.handler_dir)
    handler = handler_of(module)
    context = Context(
        spec.name,
        function_settings(spec, settings),
        environment=spec.environment,
        secrets=tuple(spec.entry.secrets),
        backends=backends,
    )
    app = handler.create_app(context) if isinstance(handler, HttpHandler) else None
    return LoadedFunction(spec, handler, context, app)


def load_stack(
    stack_file: Path, settings: Settings, names: Sequence[str] = (), backends: Backends | None = None
) -> list[LoadedFunction]:
    """Every function of the stack file, or those named (an unknown name is an error listing the known ones)."""
    _, specs = read_stack(stack_file)
    known = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigurationError("function", f"{unknown} not in {stack_file}; known: {sorted(known)}")
    backends = backends or Backends()
    return [load_function(known[name], settings, backends) for name in (names or list(known))]
