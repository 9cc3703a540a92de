"""Errors that say a backend is out of reach, not that an event is bad.

The trigger dead-letters an event whose handler still fails after its retries, as Knative does. An outage of
PostgreSQL, Redis, the document store or the broker is not the event's fault: dead-lettering every event that
comes while it lasts would take them all out of the stores. For these errors the trigger commits nothing and
reopens its consumer after a pause, so the same records come again until the backend is back.
"""

from __future__ import annotations

from smartcity.backends.bus.base import DeliveryError


def _outage_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, DeliveryError]
    try:
        import psycopg

        errors.append(psycopg.OperationalError)  # refused, lost or shut down connections, an empty pool
    except ImportError:
        pass
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:
        pass
    try:
        import pymongo.errors

        errors.append(pymongo.errors.ConnectionFailure)
    except ImportError:
        pass
    return tuple(errors)


OUTAGE_ERRORS = _outage_errors()


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says a backend is unreachable (a statement cancelled by its timeout is the event's)."""
    if type(error).__name__ == "QueryCanceled":
        return False
    return isinstance(error, OUTAGE_ERRORS)
