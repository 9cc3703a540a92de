"""A missing extra is named with its install command, and every check names a real extra and its packages."""

from __future__ import annotations

import ast
import re
import tomllib

import pytest

from smartcity.errors import ConfigurationError
from smartcity.extras import DISTRIBUTIONS, MissingExtra, require
from smartcity.settings import PROJECT_ROOT

SOURCES = ("smartcity", "models", "streaming")
EXTRAS_MODULE = PROJECT_ROOT / "smartcity" / "extras.py"


def extras_of_pyproject() -> dict[str, set[str]]:
    """Each extra -> the distribution names it requires (lower case, without versions or extras)."""
    extras = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {extra: {re.split(r"[\[<>=!~;]", requirement)[0].strip().lower() for requirement in requirements}
            for extra, requirements in extras.items()}


def extra_checks() -> list[tuple[str, str, list[str]]]:
    """Every ``require(extra, module...)`` and ``MissingExtra(extra, [module...])`` in the source."""
    found = []
    for package in SOURCES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            if path == EXTRAS_MODULE:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("require", "MissingExtra"):
                    extra, *modules = (ast.literal_eval(argument) for argument in node.args)
                    if modules and isinstance(modules[0], list):  # MissingExtra(extra, [module, ...])
                        modules = modules[0]
                    found.append((str(path.relative_to(PROJECT_ROOT)), extra, modules))
    return found


def test_a_missing_module_names_its_extra_and_the_install_command():
    with pytest.raises(MissingExtra) as raised:
        require("archive", "json", "no_such_module_of_smartcity")
    assert isinstance(raised.value, ConfigurationError)  # every command reports it as a bad setting: exit 2
    assert raised.value.modules == ["no_such_module_of_smartcity"]
    assert str(raised.value) == ("smartcity[archive]: no-such-module-of-smartcity not installed: "
                                 "pip install 'smartcity[archive]'")


def test_installed_modules_pass():
    require("runtime", "json", "pydantic")


def test_every_check_names_an_extra_that_brings_its_modules():
    extras = extras_of_pyproject()
    checks = extra_checks()
    assert {"archive", "api", "models", "simulator", "streaming"} <= {extra for _, extra, _ in checks}
    for where, extra, modules in checks:
        assert extra in extras, f"{where}: no extra {extra!r} in pyproject.toml"
        for module in modules:
            distribution = DISTRIBUTIONS.get(module, module.replace("_", "-"))
            assert distribution in extras[extra], f"{where}: {distribution} is not in the {extra!r} extra"
