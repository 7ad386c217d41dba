"""One request through the pipeline, the same for every operation::

    read body (cap) -> auth -> validate -> pre_request hooks -> key limits -> route -> attempts
    -> provider -> JSON or stream to the client -> usage, cost, hooks, telemetry

What differs per operation (parsing, the provider call, the wire shape of answers and errors) is
asked of its ``Operation``; per-request state lives in an ``Exchange`` (its public part in the
``RequestContext`` hooks see) and one ``Attempt`` per upstream attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ..asgi.request import ClientDisconnected, read_body, redacted
from ..asgi.types import Receive, Send
from ..errors import (
    BadGatewayError,
    ClientDisconnectedError,
    GatewayError,
    InternalError,
    ServiceUnavailableError,
    UpstreamTimeoutError,
    UpstreamTruncatedError,
)
from ..hooks import RequestContext
from ..routing.retry import is_server_failure
from ..routing.tokens import stream_usage
from ..usage import TokenUsage
from .attempts import run_attempts, start_attempt
from .disconnect import DisconnectWatch
from .endings import extension, fail, fire_cost, price, succeeded
from .exchange import Attempt, Exchange, error_type, total_tokens

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..parts import GatewayParts
    from ..routing.deployment import Lease
    from ..routing.group import Plan
    from ..routing.resolve import Route
    from .operation import Answer, Assembler, Operation, StreamEncoder

__all__ = ["OperationHandler"]

logger = logging.getLogger("rec_llm_gateway")


class OperationHandler:
    """Serves one operation's route for one gateway. Built once; holds no per-request state."""

    def __init__(self, gateway: GatewayParts, operation: Operation) -> None:
        self.gateway = gateway
        self.operation = operation

    async def __call__(
        self,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        request_id: str,
        response_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Serve one request; ``response_headers`` (``x-request-id`` first) go on every answer."""
        gateway = self.gateway
        operation = self.operation
        exchange = Exchange(
            context=RequestContext(
                request_id=request_id, headers=redacted(headers), operation=operation.name
            ),
            started=time.perf_counter(),
            response_headers=response_headers,
        )
        exchange.span, token = gateway.telemetry.start_request("", headers, request_id, operation.name)
        runtime = gateway.runtime()
        task = asyncio.current_task()
        if task is not None:
            runtime.requests.add(task)
        try:
            if runtime.closing:
                error = ServiceUnavailableError("The gateway is shutting down.")
                await fail(gateway, operation, exchange, error, send)
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
                error_type=error_type(exchange.error) if exchange.error else None,
            )

    async def _serve(self, exchange: Exchange, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        gateway = self.gateway
        operation = self.operation
        limits = gateway.config.limits
        context = exchange.context
        try:
            context.gateway_key_id = gateway.auth.authenticate(headers)
            body = await read_body(
                receive, limits.max_body_bytes, headers.get("content-length"), limits.body_timeout_seconds
            )
            request = operation.parse_request(body, limits, headers)
            if gateway.hooks.has("pre_request"):
                request = await gateway.hooks.pre_request(
                    request, context, exchange.span, operation.request_model
                )
            context.requested_model = request.model
            context.stream = operation.streams(request)
            gateway.telemetry.set_request_model(exchange.span, request.model, operation.name)
            routes = gateway.router.candidates(request)
            if gateway.keys.active:  # key limits, budget, shared deployment limits: taken per attempt
                exchange.ticket = gateway.keys.open(context.gateway_key_id, request, routes)
            if context.stream:
                await self._stream(exchange, request, routes, receive, send)
            else:
                await self._complete(exchange, request, routes, receive, send)
        except ClientDisconnected:
            gone = ClientDisconnectedError("The client disconnected.")
            await fail(gateway, operation, exchange, gone, send)
        except GatewayError as error:
            await fail(gateway, operation, exchange, error, send)
        except Exception as exc:  # a bug: answer 500 without internals, keep the details in the log
            logger.exception("internal error in request %s", context.request_id)
            internal = InternalError(f"Internal gateway error ({type(exc).__name__}).")
            await fail(gateway, operation, exchange, internal, send)
        except asyncio.CancelledError:
            # Cut off by a shutdown (the host's graceful timeout, shutdown_grace_seconds): counted,
            # charged and reported like any failure, then the cancellation goes on.
            stopped = ServiceUnavailableError(
                "The gateway shut down before the request finished.", code="shutdown"
            )
            with contextlib.suppress(Exception):
                await fail(gateway, operation, exchange, stopped, send)
                await fire_cost(gateway, exchange, context.usage, exchange.elapsed())
            raise
        finally:
            settle_key(gateway, exchange)

    # -- a complete answer ------------------------------------------------------------------------

    async def _complete(
        self, exchange: Exchange, request: Any, routes: Plan | Sequence[Route], receive: Receive, send: Send
    ) -> None:
        gateway = self.gateway
        # While the upstream thinks, a client that goes away cancels the attempt (closing the upstream
        # request at once) and the block raises ClientDisconnected.
        with DisconnectWatch(receive):
            result = await run_attempts(
                gateway, exchange, request, routes, self._attempt_complete, self.operation.estimates
            )
        response = result.response
        latency = exchange.elapsed()
        if gateway.config.include_extensions:
            response["x_rec_llm"] = extension(exchange, latency)
        answer_headers = self.operation.answer_headers(response)
        body = self.operation.json_body(response)
        settle_key(gateway, exchange)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", self.operation.content_type),
                    (b"content-length", str(len(body)).encode()),
                    *exchange.response_headers,
                    *self.operation.response_headers(request),
                    *answer_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
        exchange.responded = True
        # Accounting and hooks run after the client has its answer.
        await succeeded(gateway, self.operation, exchange, request, response, result.usage, latency)

    async def _attempt_complete(self, exchange: Exchange, request: Any, lease: Lease) -> Answer:
        gateway = self.gateway
        provider = lease.route.provider
        async with start_attempt(gateway, exchange, request, lease, stream=False) as attempt:
            try:
                async with asyncio.timeout(lease.timeout):
                    result = await self.operation.complete(provider, attempt.call)
            except TimeoutError:
                raise UpstreamTimeoutError(
                    f"upstream '{provider.name}' did not answer within {lease.timeout:g}s"
                ) from None
            price(gateway, exchange, attempt, result.usage)
            attempt.end(response=result.response, usage=result.usage)
        return result

    # -- a stream ---------------------------------------------------------------------------------

    async def _stream(
        self, exchange: Exchange, request: Any, routes: Plan | Sequence[Route], receive: Receive, send: Send
    ) -> None:
        gateway = self.gateway
        operation = self.operation
        # One watcher for the whole stream: while armed, it cancels this task when the client goes
        # away, wherever the task waits (on the upstream before or after the first chunk, or on the
        # client), and the upstream response is closed with it. No second task: a stream holds one.
        with DisconnectWatch(receive) as watch:
            attempt = await run_attempts(
                gateway, exchange, request, routes, self._attempt_open_stream, operation.estimates
            )
            # The text is only assembled when something reads it back.
            assembler = operation.assembler(
                gateway.hooks.has("post_response") or gateway.telemetry.capture_content
            )
            async with attempt:
                error = await self._send_stream(exchange, attempt, request, assembler, watch, send)
                usage = typed_stream_usage(attempt, request, assembler)
                if error is not None:
                    if is_server_failure(error):
                        attempt.lease.broke_off(gateway.router.clock())  # it broke after it started
                    price(gateway, exchange, attempt, usage)  # what was generated so far, if known
                response = assembler.response()
                attempt.end(response=response, usage=usage, error=error)
            latency = exchange.elapsed()
            if error is not None:
                await fail(gateway, operation, exchange, error, send)
                await fire_cost(gateway, exchange, usage, latency)
                return
            if gateway.config.include_extensions:
                response["x_rec_llm"] = extension(exchange, latency)
            await succeeded(gateway, operation, exchange, request, response, usage, latency)

    async def _send_stream(
        self,
        exchange: Exchange,
        attempt: Attempt,
        request: Any,
        assembler: Assembler,
        watch: DisconnectWatch,
        send: Send,
    ) -> GatewayError | None:
        """Send the stream to the client; the error that ended it early, if one did. Leaves the
        watcher stopped, the upstream stream closed and the lease released."""
        gateway = self.gateway
        operation = self.operation
        encoder = operation.stream_encoder(request)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        *operation.stream_headers,
                        *exchange.response_headers,
                        *operation.response_headers(request),
                    ],
                }
            )
            exchange.responded = True
            await self._pump(attempt, encoder, assembler, send)
            if not assembler.finish_reasons():
                # The upstream closed the stream without ever saying it had finished: a cut-off
                # answer must not look like a complete one to the client.
                raise UpstreamTruncatedError(
                    f"upstream '{attempt.route.provider.name}' ended the stream before its final chunk"
                )
            price(gateway, exchange, attempt, typed_stream_usage(attempt, request, assembler))
            ext = extension(exchange, exchange.elapsed()) if gateway.config.include_extensions else None
            settle_key(gateway, exchange)
            await send({"type": "http.response.body", "body": encoder.finish(ext), "more_body": False})
        except asyncio.CancelledError:
            if not watch.absorb():
                # Cut off by a shutdown: price what was generated before the cancellation goes on.
                price(gateway, exchange, attempt, typed_stream_usage(attempt, request, assembler))
                raise
            return ClientDisconnectedError("The client disconnected mid-stream.")
        except GatewayError as exc:
            with contextlib.suppress(OSError):
                body = operation.stream_failure(exc, encoder)
                await send({"type": "http.response.body", "body": body, "more_body": False})
            return exc
        except OSError:  # the server reports the client gone while we were sending
            return ClientDisconnectedError("The client disconnected mid-stream.")
        finally:
            watch.stop()
            await attempt.close_stream()  # closes the upstream response
            attempt.lease.release(total_tokens(typed_stream_usage(attempt, request, assembler)))
        return None

    async def _attempt_open_stream(self, exchange: Exchange, request: Any, lease: Lease) -> Attempt:
        """Start the upstream stream and wait for its first chunk (failover is possible until then)."""
        provider = lease.route.provider
        async with start_attempt(self.gateway, exchange, request, lease, stream=True) as attempt:
            stream = attempt.stream = self.operation.open_stream(provider, attempt.call)
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
            attempt.first_chunk_seconds = time.perf_counter() - attempt.started
            attempt.first_chunk = first
            attempt.hand_over()
        return attempt

    async def _pump(self, attempt: Attempt, encoder: StreamEncoder, assembler: Assembler, send: Send) -> None:
        limit = self.gateway.config.limits.max_stream_seconds
        stream = attempt.stream
        assert stream is not None
        try:
            async with asyncio.timeout(limit):
                chunk = attempt.first_chunk
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


def typed_stream_usage(attempt: Attempt, request: Any, assembler: Assembler) -> TokenUsage:
    """A stream's usage: typed, as the provider reported it on the call; else read from the usage
    chunk (custom providers that do not report it), else estimated (``routing.tokens``)."""
    usage = attempt.call.usage
    return usage if usage is not None else stream_usage(request, assembler.usage, assembler.output_chars)


def settle_key(gateway: GatewayParts, exchange: Exchange) -> None:
    """Settle the key's part (slots, tokens, the budget reservation turned into the cost) once.
    Done before the last byte goes out: a client that sends its next request as soon as it has this
    answer must find this one settled, not still holding its reservation (a spurious 429)."""
    ticket, exchange.ticket = exchange.ticket, None
    if ticket is not None:
        context = exchange.context
        gateway.keys.finish(ticket, total_tokens(context.usage), context.cost_usd)
