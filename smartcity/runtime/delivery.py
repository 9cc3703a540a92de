"""Knative's delivery spec, run locally: retries with linear or exponential backoff, then the dead-letter topic.

The same values are written into every generated Knative ``delivery:`` block (``retry``, ``backoffPolicy``,
``backoffDelay`` as an ISO 8601 duration, ``deadLetterSink``). As in Knative, retry ``n`` (1, 2, ...) waits
``backoffDelay * n`` (linear) or ``backoffDelay * 2**n`` (exponential).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartcity.settings import DEAD_LETTER_TOPIC

T = TypeVar("T")

_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def duration_seconds(iso: str) -> float:
    """Seconds of an ISO 8601 duration such as ``PT0.2S`` or ``PT1M30S``; ValueError when it is not one."""
    match = _DURATION.fullmatch(iso)
    if not match or iso in ("P", "PT") or iso.endswith("T"):
        raise ValueError(f"{iso!r} is not an ISO 8601 duration like PT0.5S")
    days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class DeliverySpec(BaseModel):
    """How a failed delivery is retried, and where it goes when every retry failed."""

    model_config = ConfigDict(frozen=True)

    retry: int = Field(default=3, ge=0, description="Retries after the first attempt.")
    backoff_policy: Literal["exponential", "linear"] = "exponential"
    backoff_delay: str = Field(default="PT0.2S", description="ISO 8601 duration, Knative's backoffDelay.")
    dead_letter_topic: str = DEAD_LETTER_TOPIC

    @field_validator("backoff_delay")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    def backoff_seconds(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1-based)."""
        delay = duration_seconds(self.backoff_delay)
        return delay * (2**retry_number if self.backoff_policy == "exponential" else retry_number)


@dataclass(frozen=True)
class Failure:
    """The last error of a delivery that used up its retries."""

    error: BaseException
    attempts: int
    stopped: bool = False  # cut short by a shutdown, not exhausted: neither dead-letter nor commit


def deliver(
    attempt: Callable[[], T],
    spec: DeliverySpec,
    on_retry: Callable[[int, BaseException, float], Any] = lambda *_: None,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], Any] = time.sleep,
) -> T | Failure:
    """Call ``attempt`` until it returns, at most ``1 + spec.retry`` times; a :class:`Failure` if none succeeded.

    ``should_stop`` cuts the retries short (the trigger is shutting down): the failure comes back at once marked
    ``stopped``, and the caller must neither dead-letter nor commit, so the record is redelivered after a restart.
    ``sleep`` may return early on shutdown (``threading.Event.wait``).
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt()
        except Exception as error:  # noqa: BLE001 - any handler error is a failed delivery
            if attempts > spec.retry:
                return Failure(error, attempts)
            if should_stop():
                return Failure(error, attempts, stopped=True)
            wait = spec.backoff_seconds(attempts)
            on_retry(attempts, error, wait)
            sleep(wait)
