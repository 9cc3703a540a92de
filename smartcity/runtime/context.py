"""The per-function :class:`Context`: settings, logger, secrets and lazily opened backends.

Backends are opened on first use, from the function's own settings (the process settings with its
``stack.yml`` ``environment:`` applied), and shared through :class:`Backends` by every function of the process
that names the same URL, so twenty functions on one gateway share one PostgreSQL pool, and the ``memory://``
cache is the same object for all of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any, Callable

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, SecretStr

from smartcity.backends.bus import EventBus, open_bus
from smartcity.backends.cache import Cache, open_cache
from smartcity.backends.database import Database, open_database
from smartcity.backends.documents import DocumentStore, open_documents
from smartcity.backends.objects import ObjectStore, open_objects
from smartcity.errors import ConfigurationError
from smartcity.runtime import tracing
from smartcity.runtime.events import new_event
from smartcity.settings import Settings, read_secret
from smartcity.storage.replication import export_replication_lag

OPENERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "bus": ("bus_url", open_bus),
    "database": ("database_url", open_database),
    "read_database": ("database_read_url", partial(open_database, setting="SMARTCITY_DATABASE_READ_URL")),
    "documents": ("documents_url", open_documents),
    "cache": ("cache_url", open_cache),
    "objects": ("objects_url", open_objects),
}


class Backends:
    """Opened backends of one process, one per (kind, URL); thread-safe; closed together."""

    def __init__(self) -> None:
        self._opened: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, settings: Settings) -> Any:
        """The backend of ``kind`` at the URL ``settings`` give, opened with those settings (secrets, timeouts)."""
        url = getattr(settings, OPENERS[kind][0])
        with self._lock:
            if (kind, url) not in self._opened:
                self._opened[(kind, url)] = OPENERS[kind][1](url, settings=settings)
            return self._opened[(kind, url)]

    def close(self) -> None:
        with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        for backend in opened:
            backend.close()


class Context:
    """What a handler gets beside its events: everything it may touch, opened only when touched."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        environment: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        backends: Backends | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.environment = dict(environment or {})
        self.secrets = secrets
        self.source = f"/functions/{name}"
        self.logger = logging.getLogger(f"smartcity.functions.{name}")
        self._backends = backends or Backends()

    def _backend(self, kind: str) -> Any:
        return self._backends.get(kind, self.settings)

    @property
    def bus(self) -> EventBus:
        return self._backend("bus")

    @property
    def database(self) -> Database:
        return self._backend("database")

    @property
    def read_database(self) -> Database:
        """The database of read-only queries: the replica that ``database_read_url`` names (its replication lag
        exported as metrics), or :attr:`database` when that is empty."""
        if not self.settings.database_read_url:
            return self.database
        replica = self._backend("read_database")
        export_replication_lag(lambda: replica, lambda: self.database)
        return replica

    @property
    def documents(self) -> DocumentStore:
        return self._backend("documents")

    @property
    def cache(self) -> Cache:
        return self._backend("cache")

    @property
    def objects(self) -> ObjectStore:
        return self._backend("objects")

    @property
    def trace(self) -> tracing.TraceContext | None:
        """The W3C trace of what the handler is handling (the request's, or its events'); the events it makes
        with :meth:`new_event` carry child spans of it."""
        return tracing.current()

    def env(self, name: str, default: str | None = None) -> str | None:
        """A variable of the function's ``environment:`` in stack.yml (in a container: of its environment)."""
        return self.environment.get(name, default)

    def secret(self, name: str) -> SecretStr:
        """A secret the function lists under ``secrets:`` in stack.yml, as OpenFaaS mounts only those."""
        if name not in self.secrets:
            raise ConfigurationError(f"secret {name}", f"function {self.name} does not list it under secrets: in stack.yml")
        return read_secret(name, self.settings)

    def new_event(self, type: str, data: BaseModel | Mapping[str, Any] | None = None, **attributes: Any) -> CloudEvent:
        """A CloudEvent from this function (source ``/functions/<name>``); see :func:`runtime.events.new_event`."""
        return new_event(type, attributes.pop("source", self.source), data, **attributes)
