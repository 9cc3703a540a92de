"""GatewayGuard.within_time: the time limit runs until a function starts answering, and only its own expiry counts
as a timeout (one timer on the request's task)."""

from __future__ import annotations

import asyncio

import pytest

from smartcity.runtime.guard import GatewayGuard


def test_a_call_that_started_answering_in_time_may_take_longer_to_finish():
    async def run() -> tuple[bool, list[str]]:
        started, done = asyncio.Event(), []

        async def call() -> None:
            started.set()
            await asyncio.sleep(0.3)
            done.append("finished")

        return await GatewayGuard(timeout_s=0.1).within_time(call(), started), done

    assert asyncio.run(run()) == (True, ["finished"])


@pytest.mark.parametrize("swallows", [False, True])
def test_a_call_that_has_not_started_answering_in_time_is_cancelled_and_reported(swallows):
    async def run() -> tuple[bool, list[str]]:
        cancelled: list[str] = []

        async def call() -> None:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.append("cancelled")
                if not swallows:
                    raise

        answered = await GatewayGuard(timeout_s=0.1).within_time(call(), asyncio.Event())
        await asyncio.sleep(0)  # the task goes on: its cancellation was taken back
        return answered, cancelled

    assert asyncio.run(run()) == (False, ["cancelled"])


def test_a_cancellation_from_outside_is_not_taken_for_a_timeout():
    async def run() -> None:
        guarded = asyncio.ensure_future(GatewayGuard(timeout_s=5).within_time(asyncio.sleep(5), asyncio.Event()))
        await asyncio.sleep(0.05)
        guarded.cancel()
        await guarded

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
