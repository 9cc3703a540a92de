"""The gateway's own doors (before any function): which functions outside callers may reach, the admin routes,
rate limits and time limits.

- a function marked internal in ``stack.yml`` (:attr:`~smartcity.runtime.stackfile.FunctionSpec.internal`) is
  not served at ``/function`` or ``/async-function`` (404, as if it did not exist): its trigger calls it in-process;
- ``/system/*`` needs an ``admin`` JWT (401 without a valid one, 403 for another role), and a function whose
  ``stack.yml`` entry names a ``smartcity.io/caller-role`` a JWT of that role or above;
- every function route is limited per caller (:mod:`smartcity.runtime.ratelimit`): 429 with ``Retry-After``; a
  caller without credentials by its client address, read behind trusted proxies
  (:mod:`smartcity.runtime.client_address`);
- a function that has not started answering after ``timeout_s`` is cut off: 504.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Awaitable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.auth import KeyRing, Role, caller_with_role, unauthorized
from smartcity.api.problems import ProblemError
from smartcity.errors import ConfigurationError
from smartcity.runtime.client_address import TrustedProxies
from smartcity.runtime.credentials import Refusal
from smartcity.runtime.loader import LoadedFunction
from smartcity.runtime.problems import problem_response
from smartcity.runtime.ratelimit import RateLimiter, rate_limiter
from smartcity.settings import Settings


@dataclass
class GatewayGuard:
    """What the gateway checks itself. Without a keyring no admin token verifies: ``/system/*`` stays shut."""

    internal: frozenset[str] = frozenset()
    keyring: KeyRing | None = None
    roles: Mapping[str, Role] = field(default_factory=dict)  # function -> the role its callers need
    limiter: RateLimiter | None = None
    timeout_s: float | None = None
    proxies: TrustedProxies = field(default_factory=TrustedProxies)

    @classmethod
    def for_functions(cls, functions: Sequence[LoadedFunction], settings: Settings | None = None) -> GatewayGuard:
        """The guard of these functions: their internal marks and caller roles; with ``settings``, also the JWT
        keys (without them ``/system`` and role-guarded functions stay shut), the rate and time limits and the
        trusted proxies."""
        internal = frozenset(function.name for function in functions if function.spec.internal)
        roles = {function.name: caller_role(function) for function in functions if function.spec.caller_role}
        if settings is None:
            return cls(internal, roles=roles)
        return cls(internal, KeyRing(settings), roles,
                   rate_limiter(settings.gateway_rate_per_s, settings.gateway_rate_burst, settings.cache_url),
                   settings.gateway_timeout_s, TrustedProxies.parse(settings.gateway_trusted_proxies))

    def admin_refusal(self, request: Request) -> Response | None:
        """The problem refusing a ``/system`` request without an admin token, or None."""
        return self._role_refusal(request, Role.admin)

    def caller_refusal(self, name: str, scope: dict) -> Response | None:
        """The problem refusing a call of function ``name`` without a token of the role it needs, or None."""
        role = self.roles.get(name)
        return self._role_refusal(Request(scope), role) if role is not None else None

    def _role_refusal(self, request: Request, role: Role) -> Response | None:
        try:
            if self.keyring is None:
                raise unauthorized("this gateway has no JWT keys: routes that need a role are shut")
            caller_with_role(self.keyring, request.headers.get("authorization"), role)
        except ProblemError as error:
            return Refusal(error.status, error.detail).as_response(request.url.path)
        return None

    async def rate_refusal(self, scope: dict) -> Response | None:
        """429 with ``Retry-After`` when the caller is over its rate, else None."""
        if self.limiter is None:
            return None
        request = Request(scope)
        client = self.proxies.client(request.client.host if request.client else "unknown", request.headers)
        wait = await self.limiter.retry_after(request.headers, client)
        if wait is None:
            return None
        return problem_response(429, f"too many requests; retry in {wait} s", instance=scope["path"],
                                headers={"Retry-After": str(wait)})

    async def within_time(self, call: Awaitable[None], started: asyncio.Event) -> bool:
        """Run ``call`` (a function answering); False when it had not started answering (``started``) within
        ``timeout_s``: it is then cancelled and the caller answers 504."""
        if self.timeout_s is None:
            await call
            return True
        # One timer on the running task, not a task and a waiter per request: the gateway's hot path.
        task = asyncio.current_task()
        expired = False

        def expire() -> None:
            nonlocal expired
            if not started.is_set():
                expired = True
                task.cancel()

        timer = asyncio.get_running_loop().call_later(self.timeout_s, expire)
        try:
            await call
        except asyncio.CancelledError:
            if not expired:
                raise
        finally:
            timer.cancel()
        if expired:  # cancelled by the timer, whether the call let the cancellation out or swallowed it
            task.uncancel()
            return False
        return True

    async def close(self) -> None:
        if self.limiter is not None:
            await self.limiter.close()


def caller_role(function: LoadedFunction) -> Role:
    """The role of the function's ``smartcity.io/caller-role`` label; an unknown one is a ConfigurationError."""
    try:
        return Role(function.spec.caller_role)
    except ValueError:
        raise ConfigurationError(f"stack.yml {function.name}", f"caller-role {function.spec.caller_role!r} is not a "
                                 f"role: {', '.join(role.value for role in Role)}") from None


def timed_out(name: str, timeout_s: float | None, instance: str) -> Response:
    return problem_response(504, f"function {name!r} did not answer within {timeout_s} s", instance=instance)

