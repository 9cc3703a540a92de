"""The function runtime: a function is one ``handler.py`` plus one ``stack.yml`` entry.

Handlers import what they need from here: the decorators :func:`cloudevent_function` and :func:`http_function`,
the :class:`Event` they receive and the :class:`Context` they are given. The rest of the package is platform code:
bindings, loader, gateway, trigger, delivery, Knative manifests.
"""

from smartcity.runtime.context import Context
from smartcity.runtime.events import Event, InvalidEvent, new_event
from smartcity.runtime.function import cloudevent_function, http_function

__all__ = ["Context", "Event", "InvalidEvent", "cloudevent_function", "http_function", "new_event"]
