"""Graceful shutdown of the gateway: unready first, then drain, then exit 0.

On SIGTERM (Kubernetes stopping a pod, ``docker stop``, ``kill``) the gateway:

1. answers ``/healthz`` with 503 at once, so readiness fails and load balancers stop sending, while it still
   serves whatever comes for ``SMARTCITY_GATEWAY_DRAIN_DELAY_S``;
2. then hands the signal to uvicorn, whose graceful shutdown stops listening, lets the requests in flight finish
   (at most ``SMARTCITY_GATEWAY_DRAIN_TIMEOUT_S``, ``timeout_graceful_shutdown``; then they are cancelled), runs
   the lifespan shutdown (functions and backends closed) and returns.

A second SIGTERM, or Ctrl-C, skips what is left of the delay. In Kubernetes a pod's ``preStop`` sleep does the
waiting of 1 (the endpoints drop a terminating pod meanwhile), so the chart's delay is 0 (``infra/helm``); in
compose, ``stop_grace_period`` leaves the drain its time.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any, Callable

logger = logging.getLogger(__name__)


class Drain:
    """Whether the gateway is draining, and the SIGTERM handler that starts it."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.draining = threading.Event()

    def install(self) -> None:
        """Put :meth:`_on_term` in front of the SIGTERM handler in place: uvicorn's, once its server started.
        Only in the main thread: a gateway a test serves in a thread leaves the process's signals alone."""
        if threading.current_thread() is not threading.main_thread():
            return
        server_handler = signal.getsignal(signal.SIGTERM)
        if callable(server_handler):
            signal.signal(signal.SIGTERM, lambda signum, frame: self._on_term(server_handler, signum, frame))

    def _on_term(self, server_handler: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
        first = not self.draining.is_set()
        self.draining.set()
        if not first or self.delay_s <= 0:
            server_handler(signum, frame)
            return
        logger.info("SIGTERM: /healthz answers 503; still serving for %.1f s, then draining", self.delay_s)
        timer = threading.Timer(self.delay_s, server_handler, (signum, frame))
        timer.daemon = True
        timer.start()


def exit_zero_on_sigterm() -> None:
    """End the process with status 0 on SIGTERM outside uvicorn's own handling: uvicorn raises the SIGTERM it shut
    down for again once it is done, which would end a stop that was asked for and completed with status 143."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
