"""Backends chosen by URL scheme: one small module per backend, one Protocol per kind.

Each kind (``bus``, ``database``, ``documents``, ``cache``, ``objects``) has a ``base.py`` with its contract and a
``SCHEMES`` dict in its ``__init__`` mapping URL schemes to ``"module:Class"``. :func:`load_backend` resolves a URL
to a class and opens it; an unknown scheme is an error listing the known ones, naming the setting.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from smartcity.errors import ConfigurationError


def load_backend(setting: str, url: str, schemes: dict[str, str], **options: Any) -> Any:
    """Open the backend that ``url``'s scheme names, from the ``schemes`` table of one backend kind."""
    scheme = urlsplit(url).scheme
    target = schemes.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(schemes))
        raise ConfigurationError(setting, f"unknown scheme {scheme!r} in {url!r}; known schemes: {known}")
    module_name, class_name = target.split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class.from_url(url, setting=setting, **options)
