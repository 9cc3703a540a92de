"""Errors the platform raises on purpose, each naming what is wrong and where."""

from __future__ import annotations


class ConfigurationError(Exception):
    """A setting is wrong: unknown URL scheme, unreachable host, missing secret file. Names the setting."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


class MissingDependencyError(ConfigurationError):
    """An optional package a backend needs is not installed; says how to install it."""

    def __init__(self, setting: str, package: str) -> None:
        super().__init__(setting, f"needs the package {package!r}: pip install '{package}'")
