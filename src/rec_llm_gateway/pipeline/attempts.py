"""Attempts and failover: run one request's attempts as the router's walk directs (retries,
failover, fallbacks, waits, the deadline). A stream is "answered" at its first chunk: no failover
after that."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import GatewayError
from ..hooks import FailoverEvent
from ..providers.base import UpstreamCall
from ..routing.admission import admitted
from ..routing.deployment import Lease
from .exchange import Attempt, Exchange

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..parts import GatewayParts
    from ..routing.group import Plan
    from ..routing.resolve import Route
    from ..routing.tokens import TokenEstimates
    from ..routing.walk import Walk

__all__ = ["run_attempts", "start_attempt"]

_Result = TypeVar("_Result")


async def run_attempts(
    gateway: GatewayParts,
    exchange: Exchange,
    request: Any,
    routes: Plan | Sequence[Route],
    attempt: Callable[[Exchange, Any, Lease], Awaitable[_Result]],
    estimates: TokenEstimates,
) -> _Result:
    """``attempt`` once per lease the walk hands out, until one answers; raises the error the client
    gets when nothing more may be tried. ``estimates``: the token estimates of the operation."""
    router = gateway.router
    walk: Walk | None = None
    lease = router.fast_lease(routes)  # one deployment, nothing to decide: no walk unless it fails
    if lease is None:
        walk = exchange.walk = router.walk(routes, request, estimates=estimates)
        step = walk.next()
        lease = step if isinstance(step, Lease) else await _next_lease(gateway, walk, step)
    while True:
        if exchange.ticket is not None:  # the one state store round trip before the upstream call
            lease, walk = await admitted(gateway, exchange, request, routes, walk, lease)
        try:
            result = await attempt(exchange, request, lease)
        except GatewayError as error:
            if walk is None:
                walk = exchange.walk = router.walk(routes, request, lease, estimates)
            walk.failed(lease, error)  # raises what the client gets when nothing may follow
            source, lease = lease, await _next_lease(gateway, walk, walk.next())
            await _failed_over(gateway, exchange, source.route, lease.route, error)
            continue
        except BaseException:
            if walk is not None:
                walk.abandoned(lease)
            raise
        lease.succeeded(router.clock())
        return result


async def _next_lease(gateway: GatewayParts, walk: Walk, step: Lease | float) -> Lease:
    while not isinstance(step, Lease):
        await gateway.router.sleep(step)  # backoff / Retry-After before a retry
        step = walk.next()
    return step


def start_attempt(
    gateway: GatewayParts, exchange: Exchange, request: Any, lease: Lease, *, stream: bool
) -> Attempt:
    """The ``Attempt`` for ``lease`` (its span started): use it as ``async with``."""
    context = exchange.context
    route = lease.route
    exchange.route = route
    context.provider, context.model = route.provider.name, route.model
    context.attempts += 1
    runtime = gateway.runtime()
    call = UpstreamCall(
        request=request,
        model=route.model,
        http=runtime.http,
        transport=runtime.transport,
        request_id=context.request_id,
        stream=stream,
        max_response_bytes=gateway.config.limits.max_response_bytes,
        max_event_bytes=gateway.config.limits.max_event_bytes,
    )
    span = gateway.telemetry.start_attempt(
        route.provider, route.model, request, call.headers, operation=context.operation
    )
    return Attempt(exchange, lease, call, span, gateway.telemetry)


async def _failed_over(
    gateway: GatewayParts, exchange: Exchange, source: Route, target: Route, error: GatewayError
) -> None:
    reason = error.code or type(error).__name__
    source_name = f"{source.provider.name}:{source.model}"
    target_name = f"{target.provider.name}:{target.model}"
    context = exchange.context
    attempt = context.attempts
    exchange.failovers.append(
        {"from": source_name, "to": target_name, "reason": reason, "status": error.status_code}
    )
    gateway.telemetry.record_failover(exchange.span, source_name, target_name, reason, attempt)
    gateway.usage.record(
        provider=source.provider.name,
        model=source.model,
        usage=None,
        cost_usd=None,
        latency_ms=0.0,
        error=True,
        gateway_key_id=context.gateway_key_id,
        operation=context.operation,
    )
    if gateway.hooks.has("on_failover"):
        event = FailoverEvent(source_name, target_name, reason, attempt)
        await gateway.hooks.call("on_failover", exchange.span, event=event)
