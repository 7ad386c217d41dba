"""``POST /v1/chat/completions``: the request pipeline.

    read body (cap) -> auth -> validate -> pre_request hooks -> route -> attempts
    -> provider -> JSON or SSE to the client -> usage, cost, hooks, telemetry

Per-request state lives in an ``_Exchange`` (and its public part in the ``RequestContext`` that hooks
see); the handler itself only holds what was built once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core

from .asgi import ClientDisconnected, Receive, Send, read_body, redacted, request_id_from, send_error
from .errors import (
    BadGatewayError,
    ClientDisconnectedError,
    GatewayError,
    InternalError,
    InvalidRequestError,
    ServiceUnavailableError,
    UpstreamTimeoutError,
)
from .hooks import CostEvent, FailoverEvent, RequestContext
from .providers.base import ChatResult, UpstreamCall
from .routing.deployment import Lease
from .routing.retry import is_server_failure
from .schema import ChatCompletion, ChatCompletionRequest
from .streaming import SSEEncoder, StreamAssembler, sse_event
from .usage import TokenUsage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .gateway import Gateway
    from .routing.group import Plan
    from .routing.resolve import Route
    from .routing.walk import Walk

__all__ = ["ChatHandler"]

logger = logging.getLogger("rec_llm_gateway")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]
_Result = TypeVar("_Result")


@dataclass(slots=True)
class _Exchange:
    """Everything one request accumulates on its way through (the public part is ``context``)."""

    context: RequestContext
    started: float
    response_headers: list[tuple[bytes, bytes]]
    span: Any = None
    route: Route | None = None
    upstream_seconds: float = 0.0
    error: GatewayError | None = None
    responded: bool = False
    failovers: list[dict[str, Any]] = field(default_factory=list)
    walk: Walk | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass(slots=True)
class _Attempt:
    """One upstream attempt: its call, span and timing."""

    route: Route
    call: UpstreamCall
    span: Any
    started: float
    lease: Lease
    first_chunk_seconds: float | None = None


class ChatHandler:
    """Serves chat completions for one gateway. Built once; holds no per-request state."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(
        self, receive: Receive, send: Send, headers: dict[str, str], extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        gateway = self.gateway
        request_id = request_id_from(headers)
        exchange = _Exchange(
            context=RequestContext(request_id=request_id, headers=redacted(headers)),
            started=time.perf_counter(),
            response_headers=[(b"x-request-id", request_id.encode()), *extra_headers],
        )
        exchange.span, token = gateway.telemetry.start_request("", headers, request_id)
        runtime = gateway.runtime()
        task = asyncio.current_task()
        if task is not None:
            runtime.requests.add(task)
        try:
            if runtime.closing:
                await self._fail(exchange, ServiceUnavailableError("The gateway is shutting down."), send)
            else:
                await self._serve(exchange, receive, send, headers)
        finally:
            runtime.requests.discard(task)
            context = exchange.context
            if exchange.walk is not None and exchange.walk.skipped:
                gateway.telemetry.record_skips(exchange.span, exchange.walk.skipped)
            gateway.telemetry.end_request(
                exchange.span,
                token,
                outcome=context.outcome or "success",
                status_code=context.status_code or 200,
                provider=context.provider,
                model=context.requested_model,
                cost_usd=context.cost_usd,
                attempts=context.attempts,
                overhead_seconds=max(0.0, exchange.elapsed() - exchange.upstream_seconds),
                error_type=_error_type(exchange.error) if exchange.error else None,
            )

    async def _serve(
        self, exchange: _Exchange, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        gateway = self.gateway
        limits = gateway.config.limits
        context = exchange.context
        key_ticket = None
        try:
            context.gateway_key_id = gateway.auth.authenticate(headers)
            body = await read_body(
                receive, limits.max_body_bytes, headers.get("content-length"), limits.body_timeout_seconds
            )
            request = ChatCompletionRequest.from_json(body)
            if len(request.messages) > limits.max_messages:
                raise InvalidRequestError(
                    f"Too many messages: {len(request.messages)} (limit {limits.max_messages}).",
                    param="messages",
                    code="too_many_messages",
                )
            if gateway.hooks.has("pre_request"):
                request = await gateway.hooks.pre_request(request, context, exchange.span)
            context.requested_model = request.model
            context.stream = bool(request.stream)
            gateway.telemetry.set_request_model(exchange.span, request.model)
            if gateway.keys.active:  # per-key limits and budget (auth.keys)
                key_ticket = gateway.keys.admit(context.gateway_key_id, request)
            routes = gateway.router.candidates(request)
            if request.stream:
                await self._stream(exchange, request, routes, receive, send)
            else:
                await self._complete(exchange, request, routes, receive, send)
        except ClientDisconnected:
            await self._fail(exchange, ClientDisconnectedError("The client disconnected."), send)
        except GatewayError as error:
            await self._fail(exchange, error, send)
        except Exception as exc:  # a bug: answer 500 without internals, keep the details in the log
            logger.exception("internal error in request %s", context.request_id)
            await self._fail(exchange, InternalError(f"Internal gateway error ({type(exc).__name__})."), send)
        finally:
            if key_ticket is not None:
                gateway.keys.finish(key_ticket, _total_tokens(context.usage), context.cost_usd)

    # -- non-streaming ---------------------------------------------------------------------------

    async def _complete(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        routes: Plan | Sequence[Route],
        receive: Receive,
        send: Send,
    ) -> None:
        gateway = self.gateway
        # A watcher cancels this task if the client goes away while the upstream is still thinking, so
        # the upstream request is closed at once (see _watch_disconnect).
        task = asyncio.current_task()
        assert task is not None
        watcher, disconnect = _watch_disconnect(receive, task)
        try:
            result = await self._with_failover(exchange, request, routes, self._attempt_complete)
        except asyncio.CancelledError:
            if not disconnect.fired:
                raise  # cancelled by someone else (server shutdown): let it through
            task.uncancel()
            raise ClientDisconnected from None
        finally:
            disconnect.armed = False
            watcher.cancel()
        response = result.response
        latency = exchange.elapsed()
        if gateway.config.include_extensions:
            response["x_rec_llm"] = self._extension(exchange, latency)
        body = pydantic_core.to_json(response)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *exchange.response_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
        exchange.responded = True
        # Accounting and hooks run after the client has its answer.
        await self._succeeded(exchange, request, response, result.usage, latency)

    async def _attempt_complete(
        self, exchange: _Exchange, request: ChatCompletionRequest, lease: Lease
    ) -> ChatResult:
        attempt = self._start_attempt(exchange, request, lease, stream=False)
        provider = lease.route.provider
        try:
            try:
                async with asyncio.timeout(lease.timeout):
                    result = await provider.complete(attempt.call)
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"upstream '{provider.name}' did not answer within {lease.timeout:g}s"
                ) from None
        except GatewayError as error:
            self._end_attempt(exchange, attempt, error=error)
            raise
        except BaseException:
            lease.release()
            attempt.span.end()
            raise
        self._price(exchange, attempt, result.usage)
        self._end_attempt(exchange, attempt, response=result.response, usage=result.usage)
        return result

    # -- streaming -------------------------------------------------------------------------------

    async def _stream(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        routes: Plan | Sequence[Route],
        receive: Receive,
        send: Send,
    ) -> None:
        gateway = self.gateway
        # One watcher for the whole stream: while armed, it cancels this task when the client goes
        # away, wherever the task waits (on the upstream before or after the first chunk, or on the
        # client), and the upstream response is closed with it. No second task: a stream holds one.
        task = asyncio.current_task()
        assert task is not None
        watcher, disconnect = _watch_disconnect(receive, task)
        try:
            try:
                stream, first, attempt = await self._with_failover(
                    exchange, request, routes, self._attempt_open_stream
                )
            except asyncio.CancelledError:
                if not disconnect.fired:
                    raise  # cancelled by someone else (server shutdown): let it through
                task.uncancel()
                raise ClientDisconnected from None
            encoder = SSEEncoder(request.wants_stream_usage)
            # The text is only assembled when something reads it back.
            assembler = StreamAssembler(
                keep_text=gateway.hooks.has("post_response") or gateway.telemetry.capture_content
            )
            error: GatewayError | None = None
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": _SSE_HEADERS + exchange.response_headers,
                    }
                )
                exchange.responded = True
                await self._pump(first, stream, encoder, assembler, send)
                if not assembler.finish_reasons():
                    # The upstream closed the stream without ever saying it had finished: a cut-off
                    # answer must not look like a complete one to the client.
                    raise BadGatewayError(
                        f"upstream '{attempt.route.provider.name}' ended the stream before its final chunk",
                        code="upstream_stream_truncated",
                    )
                self._price(exchange, attempt, TokenUsage.from_openai(assembler.usage))
                extension = (
                    self._extension(exchange, exchange.elapsed())
                    if gateway.config.include_extensions
                    else None
                )
                await send(
                    {"type": "http.response.body", "body": encoder.finish(extension), "more_body": False}
                )
            except asyncio.CancelledError:
                if not disconnect.fired:
                    raise
                task.uncancel()
                error = ClientDisconnectedError("The client disconnected mid-stream.")
            except GatewayError as exc:
                error = exc
                with contextlib.suppress(OSError):
                    body = encoder.flush() + sse_event(exc.to_dict())
                    await send({"type": "http.response.body", "body": body, "more_body": False})
            except OSError:  # the server reports the client gone while we were sending
                error = ClientDisconnectedError("The client disconnected mid-stream.")
            finally:
                disconnect.armed = False
                await _close_quietly(stream)  # closes the upstream response
                attempt.lease.release(_total_tokens(TokenUsage.from_openai(assembler.usage)))
        finally:
            disconnect.armed = False
            watcher.cancel()
        usage = TokenUsage.from_openai(assembler.usage)
        if error is not None:
            if is_server_failure(error):
                attempt.lease.broke_off(gateway.router.clock())  # the stream broke after it started
            self._price(exchange, attempt, usage)  # what was generated so far, if the upstream said
        response = assembler.response()
        self._end_attempt(exchange, attempt, response=response, usage=usage, error=error)
        latency = exchange.elapsed()
        if error is not None:
            await self._fail(exchange, error, send)
            await self._fire_cost(exchange, usage, latency)
            return
        if gateway.config.include_extensions:
            response["x_rec_llm"] = self._extension(exchange, latency)
        await self._succeeded(exchange, request, response, usage, latency)

    async def _attempt_open_stream(
        self, exchange: _Exchange, request: ChatCompletionRequest, lease: Lease
    ) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any], _Attempt]:
        """Start the upstream stream and wait for its first chunk (failover is possible until then)."""
        attempt = self._start_attempt(exchange, request, lease, stream=True)
        provider = lease.route.provider
        stream = provider.stream(attempt.call)
        try:
            try:
                async with asyncio.timeout(lease.timeout):
                    first = await anext(stream)
            except StopAsyncIteration:
                raise BadGatewayError(
                    f"upstream '{provider.name}' ended the stream without sending anything"
                ) from None
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"upstream '{provider.name}' sent nothing within {lease.timeout:g}s"
                ) from None
        except GatewayError as error:
            await _close_quietly(stream)
            self._end_attempt(exchange, attempt, error=error)
            raise
        except BaseException:
            await _close_quietly(stream)
            lease.release()
            attempt.span.end()
            raise
        attempt.first_chunk_seconds = time.perf_counter() - attempt.started
        return stream, first, attempt

    async def _pump(
        self,
        first: dict[str, Any],
        stream: AsyncIterator[dict[str, Any]],
        encoder: SSEEncoder,
        assembler: StreamAssembler,
        send: Send,
    ) -> None:
        limit = self.gateway.config.limits.max_stream_seconds
        try:
            async with asyncio.timeout(limit):
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
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"the stream exceeded limits.max_stream_seconds ({limit:g}s)"
            ) from None

    # -- attempts and failover -------------------------------------------------------------------

    async def _with_failover(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        routes: Plan | Sequence[Route],
        attempt: Callable[[_Exchange, ChatCompletionRequest, Lease], Awaitable[_Result]],
    ) -> _Result:
        """Run attempts as the router's walk directs: retries, failover, fallbacks, waits, deadline.
        A stream is "answered" at its first chunk: no failover after that."""
        router = self.gateway.router
        walk: Walk | None = None
        lease = router.fast_lease(routes)  # one deployment, nothing to decide: no walk unless it fails
        if lease is None:
            walk = exchange.walk = router.walk(routes, request)
            step = walk.next()
            lease = step if isinstance(step, Lease) else await self._next_lease(walk, step)
        while True:
            try:
                result = await attempt(exchange, request, lease)
            except GatewayError as error:
                if walk is None:
                    walk = exchange.walk = router.walk(routes, request, tried=lease)
                walk.failed(lease, error)  # raises what the client gets when nothing may follow
                source, lease = lease, await self._next_lease(walk, walk.next())
                await self._failover(exchange, source.route, lease.route, error)
                continue
            except BaseException:
                if walk is not None:
                    walk.abandoned(lease)
                raise
            lease.succeeded(router.clock())
            return result

    async def _next_lease(self, walk: Walk, step: Lease | float) -> Lease:
        while not isinstance(step, Lease):
            await self.gateway.router.sleep(step)  # backoff / Retry-After before a retry
            step = walk.next()
        return step

    def _start_attempt(
        self, exchange: _Exchange, request: ChatCompletionRequest, lease: Lease, *, stream: bool
    ) -> _Attempt:
        gateway = self.gateway
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
        span = gateway.telemetry.start_attempt(route.provider, route.model, request, call.headers)
        return _Attempt(route=route, call=call, span=span, started=time.perf_counter(), lease=lease)

    def _end_attempt(
        self,
        exchange: _Exchange,
        attempt: _Attempt,
        *,
        response: dict[str, Any] | None = None,
        usage: TokenUsage | None = None,
        error: GatewayError | None = None,
    ) -> None:
        exchange.upstream_seconds += attempt.call.upstream_seconds
        attempt.call.upstream_seconds = 0.0
        attempt.lease.release(_total_tokens(usage))
        self.gateway.telemetry.end_attempt(
            attempt.span,
            attempt.route.provider,
            attempt.route.model,
            seconds=time.perf_counter() - attempt.started,
            response=response,
            usage=usage,
            error_type=_error_type(error) if error else None,
            first_chunk_seconds=attempt.first_chunk_seconds,
            response_model=attempt.call.response_model or (response or {}).get("model") or None,
        )

    def _price(self, exchange: _Exchange, attempt: _Attempt, usage: TokenUsage | None) -> None:
        context = exchange.context
        context.usage = usage
        model = attempt.call.response_model or attempt.route.model
        context.cost_usd = self.gateway.price(attempt.route.provider, model, usage)

    async def _failover(self, exchange: _Exchange, source: Route, target: Route, error: GatewayError) -> None:
        gateway = self.gateway
        reason = error.code or type(error).__name__
        source_name = f"{source.provider.name}:{source.model}"
        target_name = f"{target.provider.name}:{target.model}"
        attempt = exchange.context.attempts
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
            gateway_key_id=exchange.context.gateway_key_id,
        )
        if gateway.hooks.has("on_failover"):
            event = FailoverEvent(source_name, target_name, reason, attempt)
            await gateway.hooks.call("on_failover", exchange.span, event=event)

    # -- endings ---------------------------------------------------------------------------------

    def _extension(self, exchange: _Exchange, latency: float) -> dict[str, Any]:
        context = exchange.context
        extension: dict[str, Any] = {
            "provider": context.provider,
            "model": context.model,
            "latency_ms": round(latency * 1000, 3),
            "overhead_ms": round(max(0.0, latency - exchange.upstream_seconds) * 1000, 3),
            "cost_usd": context.cost_usd,
            "request_id": context.request_id,
            "attempts": context.attempts,
        }
        if exchange.failovers:
            extension["failovers"] = exchange.failovers
        if exchange.walk is not None and exchange.walk.skipped:
            extension["skipped"] = exchange.walk.describe_skips()
        return extension

    def _conclude(self, exchange: _Exchange, latency: float, *, status: int, outcome: str) -> None:
        """Fill in the outcome and record usage for the last attempt, if there was one."""
        context = exchange.context
        context.latency_ms = round(latency * 1000, 3)
        context.status_code = status
        context.outcome = outcome
        route = exchange.route
        if route is not None:
            self.gateway.usage.record(
                provider=route.provider.name,
                model=route.model,
                usage=context.usage,
                cost_usd=context.cost_usd,
                latency_ms=latency * 1000,
                error=outcome != "success",
                gateway_key_id=context.gateway_key_id,
            )

    async def _succeeded(
        self,
        exchange: _Exchange,
        request: ChatCompletionRequest,
        response: dict[str, Any],
        usage: TokenUsage | None,
        latency: float,
    ) -> None:
        gateway = self.gateway
        self._conclude(exchange, latency, status=200, outcome="success")
        await self._fire_cost(exchange, usage, latency)
        if gateway.hooks.has("post_response"):
            model = ChatCompletion.model_validate(response)
            await gateway.hooks.call(
                "post_response", exchange.span, request=request, response=model, context=exchange.context
            )

    async def _fire_cost(self, exchange: _Exchange, usage: TokenUsage | None, latency: float) -> None:
        gateway = self.gateway
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
            )
            await gateway.hooks.call("on_cost", exchange.span, event=event)

    async def _fail(self, exchange: _Exchange, error: GatewayError, send: Send) -> None:
        gateway = self.gateway
        context = exchange.context
        exchange.error = error
        if isinstance(error, ClientDisconnectedError):
            outcome = "client_disconnected"
        else:
            outcome = "rejected" if error.status_code in (401, 403) else "error"
        self._conclude(exchange, exchange.elapsed(), status=error.status_code, outcome=outcome)
        if error.status_code >= 500:
            logger.warning("request %s failed: %s %s", context.request_id, error.status_code, error.message)
        else:
            logger.info("request %s refused: %s %s", context.request_id, error.status_code, error.message)
        if not exchange.responded and outcome != "client_disconnected":
            exchange.responded = True
            with contextlib.suppress(OSError):
                await send_error(send, error, exchange.response_headers)
        if gateway.hooks.has("on_error"):
            await gateway.hooks.call("on_error", exchange.span, error=error, context=context)


class _CancelWhenDone:
    """A done-callback for a disconnect watcher: cancels ``task`` while armed.

    A flag rather than ``remove_done_callback``: once the watcher is done its callbacks are already
    scheduled, and disarming must still win if it happens before they run."""

    __slots__ = ("armed", "fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.armed = True
        self.fired = False

    def __call__(self, watcher: asyncio.Task[None]) -> None:
        if self.armed and not watcher.cancelled():
            self.fired = True
            self.task.cancel()


def _watch_disconnect(
    receive: Receive, task: asyncio.Task[Any]
) -> tuple[asyncio.Task[None], _CancelWhenDone]:
    """A watcher task that, while armed, cancels ``task`` when the client goes away.

    The cancellation can only land while ``task`` waits at an await inside the caller's ``try``;
    the caller disarms before awaiting anything else, so it can never hit the clean-up. One extra
    task per request or stream: ~8 us (two tasks and ``asyncio.wait`` cost ~100 us)."""
    watcher = asyncio.get_running_loop().create_task(_wait_for_disconnect(receive))
    disconnect = _CancelWhenDone(task)
    watcher.add_done_callback(disconnect)
    return watcher, disconnect


async def _wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (the request body has already been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close_quietly(stream: AsyncIterator[dict[str, Any]]) -> None:
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()


def _error_type(error: GatewayError) -> str:
    return error.code or type(error).__name__


def _total_tokens(usage: TokenUsage | None) -> int | None:
    return None if usage is None else usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
