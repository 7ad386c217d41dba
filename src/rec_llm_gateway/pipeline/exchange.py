"""Per-request state: the ``Exchange`` one request accumulates, and each upstream ``Attempt``.

Neither is shared; the handler that creates them is built once and holds no per-request state.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError
from ..usage import TokenUsage

if TYPE_CHECKING:
    from ..hooks import RequestContext
    from ..providers.base import UpstreamCall
    from ..routing.deployment import Lease
    from ..routing.key_limits import KeyTicket
    from ..routing.resolve import Route
    from ..routing.walk import Walk
    from ..telemetry import Telemetry

__all__ = ["Attempt", "Exchange", "error_type", "total_tokens"]


@dataclass(slots=True)
class Exchange:
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
    ticket: KeyTicket | None = None
    """What the request holds in the state store (key limits and budget, shared deployment limits)."""

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Attempt:
    """One upstream attempt: its call, span, lease and, for a stream, the open upstream stream.

    An async context manager: leaving the block ends the attempt exactly once (the stream closed, the
    lease released, the span ended), with the error that left it if one did. ``end`` ends it earlier
    with the answer. A stream whose first chunk arrived is ``hand_over``-ed: its opening block then
    leaves it open, and the block that sends it to the client ends it.
    """

    __slots__ = (
        "_ended",
        "_handed_over",
        "call",
        "exchange",
        "first_chunk",
        "first_chunk_seconds",
        "lease",
        "route",
        "span",
        "started",
        "stream",
        "telemetry",
    )

    def __init__(
        self, exchange: Exchange, lease: Lease, call: UpstreamCall, span: Any, telemetry: Telemetry
    ) -> None:
        self.exchange = exchange
        self.lease = lease
        self.route = lease.route
        self.call = call
        self.span = span
        self.telemetry = telemetry
        self.started = time.perf_counter()
        self.first_chunk: dict[str, Any] = {}
        """A stream's first chunk (read before the attempt counts as answered)."""
        self.first_chunk_seconds: float | None = None
        self.stream: AsyncIterator[dict[str, Any]] | None = None
        self._ended = False
        self._handed_over = False

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc is None and self._handed_over:
            self._handed_over = False  # the stream goes on; the next block ends it
            return
        await self.close_stream()
        if isinstance(exc, GatewayError):
            self.end(error=exc)
        elif exc is not None:
            self.abandon()
        else:
            self.end()

    def hand_over(self) -> None:
        """The stream is open and answering: keep it open past this block."""
        self._handed_over = True

    async def close_stream(self) -> None:
        """Close the upstream stream, if one is open (closes the upstream response)."""
        stream, self.stream = self.stream, None
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()

    def end(
        self,
        *,
        response: dict[str, Any] | None = None,
        usage: TokenUsage | None = None,
        error: GatewayError | None = None,
    ) -> None:
        """Release the lease, record the attempt and end its span (once; later calls do nothing)."""
        if self._ended:
            return
        self._ended = True
        exchange, call, route = self.exchange, self.call, self.route
        exchange.upstream_seconds += call.upstream_seconds
        call.upstream_seconds = 0.0
        self.lease.release(total_tokens(usage))
        self.telemetry.end_attempt(
            self.span,
            route.provider,
            route.model,
            seconds=time.perf_counter() - self.started,
            response=response,
            usage=usage,
            error_type=error_type(error) if error else None,
            first_chunk_seconds=self.first_chunk_seconds,
            response_model=call.response_model or (response or {}).get("model") or None,
            operation=exchange.context.operation,
        )

    def abandon(self) -> None:
        """The attempt ended without an outcome (cancelled): free the lease, end the span quietly."""
        if self._ended:
            return
        self._ended = True
        self.lease.release()
        self.span.end()


def error_type(error: GatewayError) -> str:
    return error.code or type(error).__name__


def total_tokens(usage: TokenUsage | None) -> int | None:
    return None if usage is None else usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
