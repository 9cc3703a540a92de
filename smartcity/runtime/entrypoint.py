"""The process a function's container runs (the template's ``fprocess``): one function, served for of-watchdog.

of-watchdog (HTTP mode) listens on the container's port and forwards every request to ``127.0.0.1:5000``, where
this serves the function's app at ``/``. The image holds a copy of ``stack.yml``, and the template sets
``SMARTCITY_FUNCTION_NAME`` from the function's ``FUNCTION_NAME`` build argument, so the function runs with the same
entry (environment, secrets, output topic) as on the local gateway. Its code is in ``./function``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn

from smartcity.errors import ConfigurationError
from smartcity.runtime import logship
from smartcity.runtime.loader import load_function
from smartcity.runtime.production import refuse_unsafe_production
from smartcity.runtime.request_context import RequestContext
from smartcity.runtime.server import function_app
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import Settings, get_settings

UPSTREAM_HOST = "127.0.0.1"
UPSTREAM_PORT = 5000  # the template's upstream_url
HANDLER_FOLDER = Path("function")  # where faas-cli puts the handler, beside the template's files


def container_app(settings: Settings, handler_dir: Path) -> Any:
    """The ASGI app of the function ``settings.function_name`` of ``settings.stack_file``, its code in ``handler_dir``."""
    if not settings.function_name:
        raise ConfigurationError("SMARTCITY_FUNCTION_NAME", "is not set: the image serves no function")
    _, specs = read_stack(settings.stack_file)
    spec = next((spec for spec in specs if spec.name == settings.function_name), None)
    if spec is None:
        raise ConfigurationError("SMARTCITY_FUNCTION_NAME", f"{settings.function_name!r} is not in {settings.stack_file}")
    refuse_unsafe_production(settings, spec.entry.secrets)  # production mode: no demo or default secrets
    return RequestContext(function_app(load_function(spec, settings, handler_dir=handler_dir)))


def main(host: str = UPSTREAM_HOST, port: int = UPSTREAM_PORT) -> None:
    """Serve the function: by default on of-watchdog's upstream; an image without the watchdog serves it on the
    watchdog's own address (the template's ``start.sh``)."""
    settings = get_settings()
    logship.configure(settings, settings.function_name or "function")
    app = container_app(settings, HANDLER_FOLDER.resolve())
    # SIGTERM (after the pod's preStop sleep): in-flight requests get the drain timeout to finish
    # proxy_headers off: a caller on the watchdog's loopback must not name its own address with X-Forwarded-For
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=settings.gateway_drain_timeout_s,
                proxy_headers=False)


if __name__ == "__main__":
    main()
