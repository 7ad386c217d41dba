"""``POST /v1/chat/completions``: the request pipeline.

    read body (cap) -> auth -> validate -> pre_request hooks -> route -> attempts
    -> provider -> JSON or SSE to the client -> usage, cost, hooks, telemetry

Per-request state lives in a ``_Exchange``; the handler itself only holds what was built once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic_core

from .asgi import (
    ClientDisconnected,
    Receive,
    Send,
    read_body,
    redacted,
    request_id_from,
    send_error,
)
from .errors import (
    BadGatewayError,
    GatewayError,
    InternalError,
    InvalidRequestError,
    UpstreamTimeoutError,
)
from .hooks import CostEvent, FailoverEvent, RequestContext
from .providers.base import ChatResult, UpstreamCall
from .schema import ChatCompletion, ChatCompletionRequest
from .streaming import SSEEncoder, StreamAssembler, sse_event

if TYPE_CHECKING:
    from .gateway import Gateway
    from .routing.resolve import Route
    from .usage import TokenUsage

__all__ = ["ChatHandler"]

logger = logging.getLogger("rec_llm_gateway")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


@dataclass(slots=True)
class _Exchange:
    """Everything one request accumulates on its way through."""

    context: RequestContext
    started: float
    response_headers: list[tuple[bytes, bytes]]
    span: Any = None
    request: ChatCompletionRequest | None = None
    route: Route | None = None
    attempts: int = 0
    upstream_seconds: float = 0.0
    cost_usd: float | None = None
    status: int = 200
    outcome: str = "success"
    error: GatewayError | None = None
    usage: TokenUsage | None = None
    sent_response: bool = False
    failovers: list[dict[str, Any]] = field(default_factory=list)


class ChatHandler:
    """Serves chat completions for one gateway. Built once; holds no per-request state."""

    def __init__(self, core: Gateway) -> None:
        self.core = core

    async def __call__(
        self, receive: Receive, send: Send, headers: dict[str, str], extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        core = self.core
        request_id = request_id_from(headers)
        exchange = _Exchange(
            context=RequestContext(request_id=request_id, headers=redacted(headers)),
            started=time.perf_counter(),
            response_headers=[(b"x-request-id", request_id.encode()), *extra_headers],
        )
        exchange.span, token = core.telemetry.start_request("", headers, request_id)
        try:
            await self._serve(exchange, receive, send, headers)
        finally:
            route = exchange.route
            core.telemetry.end_request(
                exchange.span,
                token,
                outcome=exchange.outcome,
                status_code=exchange.status,
                provider=route.provider.name if route else None,
                model=exchange.request.model if exchange.request else None,
                cost_usd=exchange.cost_usd,
                attempts=exchange.attempts,
                overhead_seconds=max(0.0, time.perf_counter() - exchange.started - exchange.upstream_seconds),
                error_type=type(exchange.error).__name__ if exchange.error else None,
            )

    async def _serve(
        self, exchange: _Exchange, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        core = self.core
        try:
            exchange.context.gateway_key_id = core.auth.authenticate(headers)
            body = await read_body(receive, core.config.limits.max_body_bytes, headers.get("content-length"))
            request = ChatCompletionRequest.from_json(body)
            if len(request.messages) > core.config.limits.max_messages:
                raise InvalidRequestError(
                    f"Too many messages: {len(request.messages)} (limit {core.config.limits.max_messages}).",
                    param="messages",
                    code="too_many_messages",
                )
            exchange.request = request
            if core.hooks.has("pre_request"):
                request = exchange.request = await core.hooks.pre_request(
                    request, exchange.context, exchange.span
                )
            exchange.context.stream = bool(request.stream)
            core.telemetry.set_request_model(exchange.span, request.model)
            routes = core.router.candidates(request)
            if request.stream:
                await self._stream(exchange, request, routes, receive, send)
            else:
                await self._complete(exchange, request, routes, send)
        except ClientDisconnected:
            exchange.outcome, exchange.status = "client_disconnected", 499
        except GatewayError as error:
            await self._fail(exchange, error, send)
        except Exception as exc:  # a bug: answer 500 without internals, keep the details in the log
            logger.exception("internal error in request %s", exchange.context.request_id)
            await self._fail(exchange, InternalError(f"Internal gateway error ({type(exc).__name__})."), send)

    # -- non-streaming ---------------------------------------------------------------------------

    async def _complete(
        self, exchange: _Exchange, request: ChatCompletionRequest, routes: list[Route], send: Send
    ) -> None:
        core = self.core
        result, call = await self._with_failover(exchange, request, routes, self._attempt_complete)
        route = exchange.route
        assert route is not None
        response = result.response
        latency = time.perf_counter() - exchange.started
        if core.config.include_extensions:
            response["x_rec_llm"] = self._extension(exchange, latency)
        body = pydantic_core.to_json(response)
        await _send_body(send, body, exchange.response_headers)
        exchange.sent_response = True
        self._record_usage(exchange, route, result.usage, latency, error=False)
        await self._after_success(exchange, request, response, route, result.usage, latency)
        del call

    async def _attempt_complete(
        self, exchange: _Exchange, request: ChatCompletionRequest, route: Route
    ) -> tuple[ChatResult, UpstreamCall]:
        core = self.core
        provider = route.provider
        call = UpstreamCall(
            request=request,
            model=route.model,
            http=core.http_client(),
            request_id=exchange.context.request_id,
            max_response_bytes=core.config.limits.max_response_bytes,
        )
        span = core.telemetry.start_attempt(provider, route.model, request, call.headers)
        started = time.perf_counter()
        try:
            try:
                async with asyncio.timeout(provider.total_timeout):
                    result = await provider.complete(call)
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"upstream '{provider.name}' did not answer within {provider.total_timeout:g}s"
                ) from None
        except GatewayError as error:
            exchange.upstream_seconds += call.upstream_seconds
            core.telemetry.end_attempt(
                span,
                provider,
                route.model,
                seconds=time.perf_counter() - started,
                error_type=_error_type(error),
            )
            raise
        exchange.upstream_seconds += call.upstream_seconds
        exchange.usage = result.usage
        exchange.cost_usd = core.price(provider, call.response_model or route.model, result.usage)
        core.telemetry.end_attempt(
            span,
            provider,
            route.model,
            seconds=time.perf_counter() - started,
            response=result.response,
            usage=result.usage,
            response_model=call.response_model,
        )
        return result, call

    # -- streaming -------------------------------------------------------------------------------

    async def _stream(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        routes: list[Route],
        receive: Receive,
        send: Send,
    ) -> None:
        core = self.core
        stream, first, call, attempt = await self._with_failover(
            exchange, request, routes, self._attempt_open_stream
        )
        route = exchange.route
        assert route is not None
        encoder = SSEEncoder(request.wants_stream_usage)
        assembler = StreamAssembler()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _SSE_HEADERS + exchange.response_headers,
            }
        )
        exchange.sent_response = True
        # The pump runs as its own task so that a client disconnect (seen by the watcher) can stop it
        # wherever it waits, closing the upstream response with it.
        pump = asyncio.create_task(self._pump(first, stream, encoder, assembler, send))
        watcher = asyncio.create_task(_wait_for_disconnect(receive))
        error: GatewayError | None = None
        try:
            await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                exchange.outcome, exchange.status = "client_disconnected", 499
            else:
                pump.result()
                exchange.upstream_seconds += call.upstream_seconds
                call.upstream_seconds = 0.0
                exchange.usage = _usage_of(assembler)
                exchange.cost_usd = core.price(
                    route.provider, call.response_model or route.model, exchange.usage
                )
                extension = (
                    self._extension(exchange, time.perf_counter() - exchange.started)
                    if core.config.include_extensions
                    else None
                )
                await send(
                    {"type": "http.response.body", "body": encoder.finish(extension), "more_body": False}
                )
        except GatewayError as exc:
            error = exc
            with contextlib.suppress(OSError):
                body = encoder.flush() + sse_event(exc.to_dict())
                await send({"type": "http.response.body", "body": body, "more_body": False})
        except OSError:  # the server reports the client gone while we were sending
            exchange.outcome, exchange.status = "client_disconnected", 499
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
                await asyncio.wait({pump})  # let it unwind before closing the generator it iterates
            await _close_quietly(stream)  # closes the upstream response
            exchange.upstream_seconds += call.upstream_seconds
        usage = _usage_of(assembler)
        if exchange.outcome == "client_disconnected" or error is not None:
            exchange.usage = usage
            exchange.cost_usd = core.price(route.provider, call.response_model or route.model, usage)
        response = assembler.response()
        latency = time.perf_counter() - exchange.started
        core.telemetry.end_attempt(
            attempt.span,
            route.provider,
            route.model,
            seconds=time.perf_counter() - attempt.started,
            response=response,
            usage=usage,
            error_type=_error_type(error) if error else None,
            first_chunk_seconds=attempt.first_chunk_seconds,
            response_model=call.response_model or assembler.model or None,
        )
        self._record_usage(exchange, route, usage, latency, error=error is not None)
        if error is not None:
            await self._fail(exchange, error, send)
            await self._fire_cost(exchange, route, usage, latency)
            return
        if exchange.outcome == "client_disconnected":
            await self._fire_cost(exchange, route, usage, latency)
            return
        if core.config.include_extensions:
            response["x_rec_llm"] = self._extension(exchange, latency)
        await self._after_success(exchange, request, response, route, usage, latency)

    async def _attempt_open_stream(
        self, exchange: _Exchange, request: ChatCompletionRequest, route: Route
    ) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any], UpstreamCall, _Attempt]:
        """Start the upstream stream and wait for its first chunk (failover is possible until then)."""
        core = self.core
        provider = route.provider
        call = UpstreamCall(
            request=request,
            model=route.model,
            http=core.http_client(),
            request_id=exchange.context.request_id,
            stream=True,
            max_response_bytes=core.config.limits.max_response_bytes,
        )
        attempt = _Attempt(
            span=core.telemetry.start_attempt(provider, route.model, request, call.headers),
            started=time.perf_counter(),
        )
        stream = provider.stream(call)
        try:
            try:
                async with asyncio.timeout(provider.total_timeout):
                    first = await anext(stream)
            except StopAsyncIteration:
                raise BadGatewayError(
                    f"upstream '{provider.name}' ended the stream without sending anything"
                ) from None
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"upstream '{provider.name}' sent nothing within {provider.total_timeout:g}s"
                ) from None
        except BaseException as error:
            await _close_quietly(stream)
            exchange.upstream_seconds += call.upstream_seconds
            if isinstance(error, GatewayError):
                core.telemetry.end_attempt(
                    attempt.span,
                    provider,
                    route.model,
                    seconds=time.perf_counter() - attempt.started,
                    error_type=_error_type(error),
                )
            else:
                attempt.span.end()
            raise
        attempt.first_chunk_seconds = time.perf_counter() - attempt.started
        return stream, first, call, attempt

    async def _pump(
        self,
        first: dict[str, Any],
        stream: AsyncIterator[dict[str, Any]],
        encoder: SSEEncoder,
        assembler: StreamAssembler,
        send: Send,
    ) -> None:
        limit = self.core.config.limits.max_stream_seconds
        try:
            async with asyncio.timeout(limit):
                await self._forward(first, stream, encoder, assembler, send)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"the stream exceeded limits.max_stream_seconds ({limit:g}s)"
            ) from None

    @staticmethod
    async def _forward(
        first: dict[str, Any],
        stream: AsyncIterator[dict[str, Any]],
        encoder: SSEEncoder,
        assembler: StreamAssembler,
        send: Send,
    ) -> None:
        chunk = first
        while True:
            assembler.add(chunk)
            data = encoder.feed(chunk)
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return

    # -- attempts and failover -------------------------------------------------------------------

    async def _with_failover(
        self, exchange: _Exchange, request: ChatCompletionRequest, routes: list[Route], attempt: Any
    ) -> Any:
        core = self.core
        last_error: GatewayError | None = None
        for position, route in enumerate(routes):
            exchange.route = route
            exchange.context.provider, exchange.context.model = route.provider.name, route.model
            exchange.attempts += 1
            try:
                result = await attempt(exchange, request, route)
            except GatewayError as error:
                last_error = error
                core.router.record_failure(route, error)
                if position + 1 < len(routes) and core.router.should_failover(error):
                    target = routes[position + 1]
                    await self._failover(exchange, route, target, error)
                    continue
                raise
            core.router.record_success(route)
            return result
        raise last_error or BadGatewayError("no provider could serve the request")

    async def _failover(self, exchange: _Exchange, source: Route, target: Route, error: GatewayError) -> None:
        core = self.core
        reason = error.code or type(error).__name__
        source_name, target_name = (
            f"{source.provider.name}:{source.model}",
            f"{target.provider.name}:{target.model}",
        )
        exchange.failovers.append(
            {"from": source_name, "to": target_name, "reason": reason, "status": error.status_code}
        )
        core.telemetry.record_failover(exchange.span, source_name, target_name, reason, exchange.attempts)
        self._record_usage(exchange, source, None, 0.0, error=True)
        if core.hooks.has("on_failover"):
            await core.hooks.call(
                "on_failover",
                exchange.span,
                event=FailoverEvent(source_name, target_name, reason, exchange.attempts),
            )

    # -- endings ---------------------------------------------------------------------------------

    def _extension(self, exchange: _Exchange, latency: float) -> dict[str, Any]:
        route = exchange.route
        assert route is not None
        extension = {
            "provider": route.provider.name,
            "model": route.model,
            "latency_ms": round(latency * 1000, 3),
            "overhead_ms": round(max(0.0, latency - exchange.upstream_seconds) * 1000, 3),
            "cost_usd": exchange.cost_usd,
            "request_id": exchange.context.request_id,
            "attempts": exchange.attempts,
        }
        if exchange.failovers:
            extension["failovers"] = exchange.failovers
        return extension

    def _record_usage(
        self, exchange: _Exchange, route: Route, usage: TokenUsage | None, latency: float, *, error: bool
    ) -> None:
        self.core.usage.record(
            provider=route.provider.name,
            model=route.model,
            usage=usage,
            cost_usd=exchange.cost_usd if not error or usage is not None else None,
            latency_ms=latency * 1000,
            error=error,
        )

    async def _after_success(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        response: dict[str, Any],
        route: Route,
        usage: TokenUsage | None,
        latency: float,
    ) -> None:
        core = self.core
        await self._fire_cost(exchange, route, usage, latency)
        if core.hooks.has("post_response"):
            model = ChatCompletion.model_validate(response)
            await core.hooks.call(
                "post_response", exchange.span, request=request, response=model, context=exchange.context
            )

    async def _fire_cost(
        self, exchange: _Exchange, route: Route, usage: TokenUsage | None, latency: float
    ) -> None:
        core = self.core
        if usage is None:
            return
        if exchange.cost_usd is not None:
            core.telemetry.record_cost(route.provider.name, route.model, exchange.cost_usd)
        if core.hooks.has("on_cost"):
            event = CostEvent(
                provider=route.provider.name,
                model=route.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
                cost_usd=exchange.cost_usd,
                latency_ms=round(latency * 1000, 3),
                request_id=exchange.context.request_id,
                timestamp=time.time(),
                cached_tokens=usage.cached_tokens,
                gateway_key_id=exchange.context.gateway_key_id,
            )
            await core.hooks.call("on_cost", exchange.span, event=event)

    async def _fail(self, exchange: _Exchange, error: GatewayError, send: Send) -> None:
        core = self.core
        exchange.error = error
        exchange.status = error.status_code
        exchange.outcome = "rejected" if error.status_code in (401, 403) else "error"
        if error.status_code >= 500:
            logger.warning(
                "request %s failed: %s %s", exchange.context.request_id, error.status_code, error.message
            )
        else:
            logger.info(
                "request %s refused: %s %s", exchange.context.request_id, error.status_code, error.message
            )
        if not exchange.sent_response:
            if exchange.route is not None and exchange.attempts:
                self._record_usage(
                    exchange, exchange.route, None, time.perf_counter() - exchange.started, error=True
                )
            with contextlib.suppress(OSError):
                await send_error(send, error, exchange.response_headers)
            exchange.sent_response = True
        if core.hooks.has("on_error"):
            await core.hooks.call("on_error", exchange.span, error=error, context=exchange.context)


@dataclass(slots=True)
class _Attempt:
    span: Any
    started: float
    first_chunk_seconds: float | None = None


async def _send_body(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (the request body has already been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close_quietly(stream: AsyncIterator[dict[str, Any]]) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


def _usage_of(assembler: StreamAssembler) -> TokenUsage | None:
    from .usage import TokenUsage

    return TokenUsage.from_openai(assembler.usage)


def _error_type(error: GatewayError) -> str:
    return error.code or type(error).__name__
