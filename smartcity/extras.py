"""The package's optional parts (pyproject.toml's extras), and the error that names the one to install.

A plain ``pip install smartcity`` has only the settings, the stack file and the command; each function image
installs the extras its handler needs (stack.yml ``build_args.PLATFORM_EXTRAS``). A module that needs an extra
calls :func:`require` before its imports, so that a missing one fails with the exact install command instead of
a bare ``No module named 'pyarrow'``.
"""

from __future__ import annotations

import importlib.util

from smartcity.errors import ConfigurationError

# The distribution of each module that an extra brings, where its import name differs from the distribution's.
DISTRIBUTIONS = {"jwt": "pyjwt", "sklearn": "scikit-learn", "xgboost": "xgboost-cpu", "sumo": "eclipse-sumo",
                 "swagger_ui": "swagger-ui-py", "yaml": "pyyaml", "psycopg_pool": "psycopg-pool"}


class MissingExtra(ConfigurationError):
    """Modules of an extra that is not installed; the message ends with the command that installs it.

    A :class:`ConfigurationError`, so every command reports it as it reports a bad setting (exit 2).
    """

    def __init__(self, extra: str, modules: list[str]) -> None:
        self.extra = extra
        self.modules = modules
        self.install_command = f"pip install 'smartcity[{extra}]'"
        names = ", ".join(DISTRIBUTIONS.get(module, module.replace("_", "-")) for module in modules)
        super().__init__(f"smartcity[{extra}]", f"{names} not installed: {self.install_command}")


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


def require(extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` unless every one of ``modules`` (top-level names) is installed."""
    missing = [module for module in modules if not installed(module)]
    if missing:
        raise MissingExtra(extra, missing)
