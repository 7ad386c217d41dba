"""What differs between operations (chat, embeddings, messages, ...): the rest of the pipeline is shared.

An ``Operation`` is built once per route and holds no per-request state. The pipeline
(``handler.py``) asks it, for one request, to:

- parse and validate the body (``parse``: a 400 naming the parameter when it is wrong);
- call a provider (``complete``; ``open_stream`` when the operation streams);
- write the answer in the wire shape its clients speak (``json_body``, ``stream_encoder``) and render
  errors in that API's envelope (``error_body``, ``stream_error``): an inbound API with another wire
  shape (Anthropic Messages, OpenAI Responses) overrides these four and shares everything else;
- build what hooks see (``request_model`` for what ``pre_request`` returns, ``response_model`` for
  ``post_response``).

``name`` is ``gen_ai.operation.name`` on spans and metrics, ``context.operation`` for hooks and the
operation a usage record counts.

Adding a route: a request model, a translation per provider (``Provider.<operation>``), an
``Operation`` subclass here-style in its own module, and a line in the route table (``routes.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pydantic_core

from ..routing.tokens import CHAT_ESTIMATES, TokenEstimates
from ..streaming import SSEEncoder, StreamAssembler, sse_event

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..config import LimitsConfig
    from ..errors import GatewayError
    from ..parts import GatewayParts
    from ..providers.base import Provider, UpstreamCall
    from ..usage import TokenUsage

__all__ = ["Answer", "Assembler", "Operation", "OperationDoc", "StreamEncoder"]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


class Answer(Protocol):
    """A complete answer from a provider: the response dict in the operation's OpenAI shape, and its
    usage (``ChatResult`` for chat, ``EmbeddingResult`` for embeddings)."""

    response: dict[str, Any]
    usage: TokenUsage | None


class StreamEncoder(Protocol):
    """Turns the OpenAI chunks a provider yields into the bytes the client's API expects."""

    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def finish(self, extension: dict[str, Any] | None) -> bytes: ...

    def flush(self) -> bytes: ...


class Assembler(Protocol):
    """What a stream amounted to: usage, finish reasons, the response ``post_response`` sees."""

    usage: dict[str, Any] | None
    output_chars: int
    """Characters generated so far (to estimate usage when the upstream never reports it)."""

    def add(self, chunk: dict[str, Any]) -> None: ...

    def finish_reasons(self) -> list[str]: ...

    def response(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class OperationDoc:
    """What the OpenAPI description says of an operation's bodies (``Operation.describe``)."""

    request: type[BaseModel]
    response: type[BaseModel]
    stream_event: type[BaseModel] | None = None
    """One stream event's data, when the operation streams."""
    error: type[BaseModel] | None = None
    """The error envelope, when it is not OpenAI's."""
    named_events: bool = False
    """Stream events are named (``event:`` and ``data:``, no ``[DONE]``), as Anthropic's are."""
    headers: tuple[str, ...] = ()
    """Response headers of a 200 besides ``x-request-id``."""


class Operation:
    """Base of every operation; the defaults speak OpenAI's wire shapes. Subclass per route."""

    name: ClassVar[str]
    """``gen_ai.operation.name``: ``chat``, ``embeddings``, ``text_completion``, ..."""
    request_model: ClassVar[type[BaseModel]]
    """What the body is validated into, and what a ``pre_request`` hook may return instead."""
    response_model: ClassVar[type[BaseModel]]
    """What ``post_response`` receives (validated from the response dict)."""
    chunk_model: ClassVar[type[BaseModel] | None] = None
    """A stream event's shape, when the operation streams (for the OpenAPI description)."""
    response_description: ClassVar[str] = "The response."
    """What a 200 is, for the OpenAPI description."""
    estimates: ClassVar[TokenEstimates] = CHAT_ESTIMATES
    """Token estimates of a request, for context windows, the ``cost`` strategy and TPM limits
    (a chat request's by default: operations that translate to chat keep them)."""
    content_type: ClassVar[bytes] = b"application/json"
    stream_headers: ClassVar[list[tuple[bytes, bytes]]] = SSE_HEADERS

    @classmethod
    def describe(cls) -> OperationDoc:
        """The bodies as the OpenAPI description shows them (called only when it is built: an
        override may import models made for the description)."""
        return OperationDoc(cls.request_model, cls.response_model, cls.chunk_model)

    @classmethod
    def for_gateway(cls, gateway: GatewayParts) -> Operation:
        """The instance serving ``gateway`` (built once per gateway; override when it needs parts of
        the gateway, such as a store)."""
        return cls()

    # -- the request ----------------------------------------------------------------------------

    def parse(self, body: bytes, limits: LimitsConfig) -> Any:
        """The validated request; raise ``InvalidRequestError`` (naming the parameter) when not."""
        raise NotImplementedError

    def parse_request(self, body: bytes, limits: LimitsConfig, headers: dict[str, str]) -> Any:
        """``parse``, for an operation that also reads the request's headers (Anthropic's version
        and betas); the pipeline calls this one."""
        return self.parse(body, limits)

    def streams(self, request: Any) -> bool:
        return bool(getattr(request, "stream", False))

    # -- the provider ---------------------------------------------------------------------------

    async def complete(self, provider: Provider, call: UpstreamCall) -> Answer:
        raise NotImplementedError

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    # -- the client's wire shape ----------------------------------------------------------------

    def answer_headers(self, response: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        """Extra headers for a complete answer (read before ``json_body``); none by default."""
        return []

    def json_body(self, response: dict[str, Any]) -> bytes:
        return pydantic_core.to_json(response)

    def stream_encoder(self, request: Any) -> StreamEncoder:
        return SSEEncoder(bool(getattr(request, "wants_stream_usage", False)))

    def assembler(self, keep_text: bool) -> Assembler:
        return StreamAssembler(keep_text=keep_text)

    def error_body(self, error: GatewayError) -> bytes:
        """The error envelope of this API (OpenAI's ``{"error": {...}}`` by default)."""
        return error.to_json()

    def stream_error(self, error: GatewayError) -> bytes:
        """The final stream event that reports ``error`` once a stream has started."""
        return sse_event(error.to_dict())

    def stream_failure(self, error: GatewayError, encoder: StreamEncoder) -> bytes:
        """What ends a stream that fails after it started: what ``encoder`` still holds, then
        ``stream_error``. Override when the error event depends on the stream so far."""
        return encoder.flush() + self.stream_error(error)

    def response_headers(self, request: Any) -> list[tuple[bytes, bytes]]:
        """Headers this request's answer carries besides the gateway's own (known once answered)."""
        return []
