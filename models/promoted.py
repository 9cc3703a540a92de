"""The promoted model of each target, as a serving function holds it: re-read from the registry at most every
``reload_s`` seconds, so that a promotion (or a rollback) serves from the next batch on, without a restart.

Any registry with ``promoted_version(target)`` and ``load(target, version)`` will do: the forecasters'
:class:`models.registry.Registry` or the detectors' :class:`models.anomaly.catalog.AnomalyRegistry`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


class PromotionSource(Protocol):
    def promoted_version(self, target: str) -> str | None: ...

    def load(self, target: str, version: str) -> Any: ...


@dataclass(frozen=True)
class Promoted:
    target: str
    version: str
    model: Any


class PromotedModels:
    """The promoted version of each of ``targets``, loaded once per version."""

    def __init__(self, registry: PromotionSource, targets: Iterable[str], reload_s: float = 30.0) -> None:
        self.registry = registry
        self.targets = tuple(targets)
        self.reload_s = reload_s
        self._current: dict[str, Promoted] = {}
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> dict[str, Promoted]:
        """Target -> its promoted model (targets with none are left out)."""
        with self._lock:
            if time.monotonic() - self._checked_at >= self.reload_s:
                self._checked_at = time.monotonic()
                for target in self.targets:
                    self._refresh(target)
            return dict(self._current)

    def _refresh(self, target: str) -> None:
        version = self.registry.promoted_version(target)
        held = self._current.get(target)
        if version is None:
            self._current.pop(target, None)
        elif held is None or held.version != version:
            self._current[target] = Promoted(target, version, self.registry.load(target, version))
            log.info("serving %s version %s (%s)", target, version, getattr(self._current[target].model, "name", "?"))
