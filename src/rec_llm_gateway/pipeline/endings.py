"""How a request ends: the ``x_rec_llm`` extension, usage, cost, ``post_response`` / ``on_error``,
and the error response in the operation's envelope."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..asgi.types import Send
from ..errors import ClientDisconnectedError, GatewayError
from ..hooks import CostEvent
from .exchange import Attempt, Exchange

if TYPE_CHECKING:
    from ..parts import GatewayParts
    from ..usage import TokenUsage
    from .operation import Operation

__all__ = ["extension", "fail", "fire_cost", "price", "send_operation_error", "succeeded"]

logger = logging.getLogger("rec_llm_gateway")


def price(gateway: GatewayParts, exchange: Exchange, attempt: Attempt, usage: TokenUsage | None) -> None:
    """Price ``usage`` on the attempt's deployment into the context."""
    context = exchange.context
    context.usage = usage
    model = attempt.call.response_model or attempt.route.model
    context.cost_usd = gateway.price(attempt.route.provider, model, usage)


def extension(exchange: Exchange, latency: float) -> dict[str, Any]:
    context = exchange.context
    data: dict[str, Any] = {
        "provider": context.provider,
        "model": context.model,
        "latency_ms": round(latency * 1000, 3),
        "overhead_ms": round(max(0.0, latency - exchange.upstream_seconds) * 1000, 3),
        "cost_usd": context.cost_usd,
        "request_id": context.request_id,
        "attempts": context.attempts,
    }
    if exchange.failovers:
        data["failovers"] = exchange.failovers
    if exchange.walk is not None and exchange.walk.skipped:
        data["skipped"] = exchange.walk.describe_skips()
    return data


def _conclude(
    gateway: GatewayParts, exchange: Exchange, latency: float, *, status: int, outcome: str
) -> None:
    """Fill in the outcome and record usage for the last attempt, if there was one (once: a
    failure after the client had its answer, in a hook, must not count the request again)."""
    context = exchange.context
    if context.outcome == "success":
        return
    context.latency_ms = round(latency * 1000, 3)
    context.status_code = status
    context.outcome = outcome
    route = exchange.route
    if route is not None:
        gateway.usage.record(
            provider=route.provider.name,
            model=route.model,
            usage=context.usage,
            cost_usd=context.cost_usd,
            latency_ms=latency * 1000,
            error=outcome != "success",
            gateway_key_id=context.gateway_key_id,
            operation=context.operation,
        )


async def succeeded(
    gateway: GatewayParts,
    operation: Operation,
    exchange: Exchange,
    request: Any,
    response: dict[str, Any],
    usage: TokenUsage | None,
    latency: float,
) -> None:
    _conclude(gateway, exchange, latency, status=200, outcome="success")
    await fire_cost(gateway, exchange, usage, latency)
    if gateway.hooks.has("post_response"):
        try:
            model = operation.response_model.model_validate(response)
        except ValidationError as exc:
            # The client has its answer; a hook cannot be given a response of the expected shape.
            logger.warning(
                "request %s: post_response skipped, the response does not fit %s (%d errors)",
                exchange.context.request_id,
                operation.response_model.__name__,
                exc.error_count(),
            )
            return
        await gateway.hooks.call(
            "post_response", exchange.span, request=request, response=model, context=exchange.context
        )


async def fire_cost(
    gateway: GatewayParts, exchange: Exchange, usage: TokenUsage | None, latency: float
) -> None:
    context = exchange.context
    if usage is None or context.provider is None or context.model is None:
        return
    if context.cost_usd is not None:
        gateway.telemetry.record_cost(context.provider, context.model, context.cost_usd)
    if gateway.hooks.has("on_cost"):
        event = CostEvent(
            provider=context.provider,
            model=context.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cost_usd=context.cost_usd,
            latency_ms=round(latency * 1000, 3),
            request_id=context.request_id,
            timestamp=time.time(),
            cached_tokens=usage.cached_tokens,
            gateway_key_id=context.gateway_key_id,
            estimated=usage.estimated,
        )
        await gateway.hooks.call("on_cost", exchange.span, event=event)


async def fail(
    gateway: GatewayParts, operation: Operation, exchange: Exchange, error: GatewayError, send: Send
) -> None:
    context = exchange.context
    exchange.error = error
    if isinstance(error, ClientDisconnectedError):
        outcome = "client_disconnected"
    else:
        outcome = "rejected" if error.status_code in (401, 403) else "error"
    _conclude(gateway, exchange, exchange.elapsed(), status=error.status_code, outcome=outcome)
    if error.status_code >= 500:
        logger.warning("request %s failed: %s %s", context.request_id, error.status_code, error.message)
    else:
        logger.info("request %s refused: %s %s", context.request_id, error.status_code, error.message)
    if not exchange.responded and outcome != "client_disconnected":
        exchange.responded = True
        with contextlib.suppress(OSError):
            await send_operation_error(send, operation, error, exchange.response_headers)
    if gateway.hooks.has("on_error"):
        await gateway.hooks.call("on_error", exchange.span, error=error, context=context)


async def send_operation_error(
    send: Send, operation: Operation, error: GatewayError, headers: list[tuple[bytes, bytes]]
) -> None:
    """``error`` as a complete response, in the envelope of ``operation``'s API."""
    body = operation.error_body(error)
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", operation.content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
