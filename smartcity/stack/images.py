"""Function images: which extras of the package each function's image installs (stack.yml build_args)."""

from __future__ import annotations

from smartcity.runtime.stackfile import StackFunction

PLATFORM_EXTRAS_BUILD_ARG = "PLATFORM_EXTRAS"
DEFAULT_EXTRAS = "runtime"


def platform_extras(entry: StackFunction) -> tuple[str, ...]:
    """The extras of the smartcity package a function's image installs (``build_args.PLATFORM_EXTRAS``)."""
    named = entry.build_args.get(PLATFORM_EXTRAS_BUILD_ARG, DEFAULT_EXTRAS)
    return tuple(extra.strip() for extra in named.split(",") if extra.strip())
