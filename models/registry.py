"""The model registry: trained forecasters and their cards in the object store, and which one is promoted.

Layout, per target (``segment-speed`` ...)::

    models/<target>/<model name>/<version>/<file>...   the model's files (Forecaster.to_files), immutable
    models/<target>/<model name>/<version>/card.json   written last: a version without it is unfinished
    models/<target>/promoted.json                      the promoted version and the history of promotions

A version is the UTC time of saving and a short hash of the files (``20261129T184500123Z-3f9a1c0b``): versions
sort by age, and are never written twice. The card holds what training says of the model (data window, metrics
...) plus the registry's own fields: ``target``, ``model``, ``version``, ``saved_at``, ``params`` and the sha256 of
every file, which :meth:`Registry.load` checks.

``promoted.json`` holds ``version`` and ``model`` (what serves now), ``stack`` (the promoted versions, the current
last: :meth:`Registry.rollback` pops it) and ``history`` (every promotion and rollback, with its time). Serving
polls :meth:`Registry.promoted_version`, one small read, and reloads when it changes. Two processes promoting the
same target at the same moment may lose one update (the object store has no compare-and-swap); training runs one
at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np

from models import catalog
from models.base import Forecaster
from models.fallback import STATE_FILE, WithFallback
from smartcity.backends.objects import ObjectStore
from smartcity.settings import Settings
from smartcity.storage.encryption import at_rest

PREFIX = "models/"
CARD = "card.json"
PROMOTED = "promoted.json"


class RegistryError(LookupError):
    """An unknown target, version or model name, or nothing to roll back to: the message names it."""


def new_version(files: dict[str, bytes], now: datetime | None = None) -> str:
    """``<UTC time to the millisecond>Z-<first 8 hex digits of the files' sha256>``: sortable and unique."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{digest.hexdigest()[:8]}"


def _finite(value: Any) -> Any:
    """``value`` with numpy numbers and arrays as Python ones, NaN and infinities as None: a card is strict JSON."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class Registry:
    """Forecasters by target and version in one object store; files, cards and pointers encrypted as ``settings``
    say (:func:`smartcity.storage.encryption.at_rest`)."""

    def __init__(self, objects: ObjectStore, prefix: str = PREFIX, settings: Settings | None = None) -> None:
        self.objects = at_rest(objects, settings)
        self.prefix = prefix

    def _folder(self, target: str, model: str, version: str) -> str:
        return f"{self.prefix}{target}/{model}/{version}/"

    def save(self, target: str, model: Forecaster, card: dict[str, Any], now: datetime | None = None) -> str:
        """Store the fitted ``model`` with its ``card``; returns the new version."""
        files = model.to_files()
        if CARD in files:
            raise ValueError(f"model {model.name} has a file named {CARD}, which the registry keeps for the card")
        version = new_version(files, now)
        folder = self._folder(target, model.name, version)
        if self.objects.list(folder):
            raise RegistryError(f"version {version} of {target} exists already; artifacts are never replaced")
        for name, data in files.items():
            self.objects.put(folder + name, data)
        saved = {**card, "target": target, "model": model.name, "version": version,
                 "saved_at": datetime.now(timezone.utc).isoformat(), "params": model.params(),
                 "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}}
        self.objects.put(folder + CARD, json.dumps(_finite(saved), indent=1).encode(), "application/json")
        return version

    def targets(self) -> list[str]:
        """The targets that have anything in the registry, sorted."""
        return sorted({key[len(self.prefix):].split("/", 1)[0] for key in self.objects.list(self.prefix)})

    def versions(self, target: str) -> list[str]:
        """The finished versions of ``target`` (every model), oldest first."""
        return sorted(self._finished(target))

    def card(self, target: str, version: str) -> dict[str, Any]:
        return json.loads(self.objects.get(self._folder(target, self._model_of(target, version), version) + CARD))

    def files(self, target: str, version: str) -> dict[str, bytes]:
        """The model files of a version (not the card), each checked against the hash its card holds."""
        card = self.card(target, version)
        folder = self._folder(target, card["model"], version)
        files = {}
        for name, expected in card["files"].items():
            data = self.objects.get(folder + name)
            if hashlib.sha256(data).hexdigest() != expected:
                raise RegistryError(f"file {folder}{name} does not match the hash in its card: the artifact changed")
            files[name] = data
        return files

    def load(self, target: str, version: str) -> Forecaster:
        """The predictor of a version, rebuilt from its files (no torch needed): a model trained inside
        :class:`~models.fallback.WithFallback` (its files hold ``fallback.json``) comes back wrapped, one saved
        bare (a baseline, or an artifact from before training wrapped them) bare."""
        files = self.files(target, version)
        wrapped = STATE_FILE in files
        return (WithFallback if wrapped else catalog.model_class(self._model_of(target, version))).load_files(files)

    def promoted_version(self, target: str) -> str | None:
        """The promoted version of ``target``, None when none is: one small read, for serving to poll."""
        return self._pointer(target).get("version")

    def promoted(self, target: str) -> tuple[str, dict[str, Any]] | None:
        """The promoted version and its card, None when none is."""
        version = self.promoted_version(target)
        return None if version is None else (version, self.card(target, version))

    def promotions(self, target: str) -> list[dict[str, Any]]:
        """Every promotion and rollback of ``target``, oldest first (``action``, ``version``, ``model``, ``at``)."""
        return self._pointer(target).get("history", [])

    def promote(self, target: str, version: str) -> dict[str, Any]:
        """Make ``version`` the one that serves; returns its card."""
        card = self.card(target, version)
        pointer = self._pointer(target)
        stack = [*pointer.get("stack", []), version]
        self._write_pointer(target, pointer, stack, "promote")
        return card

    def rollback(self, target: str) -> str:
        """Serve the version promoted before the current one again; returns it. RegistryError when none was."""
        pointer = self._pointer(target)
        stack = pointer.get("stack", [])
        if len(stack) < 2:
            now = f"only {stack[-1]} was ever promoted" if stack else "nothing is promoted"
            raise RegistryError(f"no previously promoted version of {target} to roll back to: {now}")
        self._write_pointer(target, pointer, stack[:-1], "rollback")
        return stack[-2]

    def _write_pointer(self, target: str, pointer: dict[str, Any], stack: list[str], action: str) -> None:
        version = stack[-1]
        model = self._model_of(target, version)
        event = {"action": action, "version": version, "model": model, "at": datetime.now(timezone.utc).isoformat()}
        new = {"target": target, "version": version, "model": model, "stack": stack,
               "history": [*pointer.get("history", []), event]}
        self.objects.put(f"{self.prefix}{target}/{PROMOTED}", json.dumps(new, indent=1).encode(), "application/json")

    def _pointer(self, target: str) -> dict[str, Any]:
        try:
            return json.loads(self.objects.get(f"{self.prefix}{target}/{PROMOTED}"))
        except KeyError:
            return {}

    def _finished(self, target: str) -> dict[str, str]:
        """Version -> model name, for every version of ``target`` that has its card."""
        found = {}
        for key in self.objects.list(f"{self.prefix}{target}/"):
            parts = key[len(self.prefix) + len(target) + 1:].split("/")
            if len(parts) == 3 and parts[2] == CARD:
                found[parts[1]] = parts[0]
        return found

    def _model_of(self, target: str, version: str) -> str:
        pointer = self._pointer(target)
        if pointer.get("version") == version:  # the serving path's case: no listing needed
            return pointer["model"]
        finished = self._finished(target)
        if version not in finished:
            known = ", ".join(sorted(finished)[-5:]) or "none"
            raise RegistryError(f"no version {version!r} of target {target!r} in the registry (newest: {known})")
        return finished[version]
