"""``POST /v1/responses``: what OpenAI's Responses API adds to the shared pipeline.

Each attempt goes native to upstreams that serve the Responses API (OpenAI, Azure) and through chat
completions to every other (``responses/flow.py``); the client gets a Response object or the typed
stream events either way, errors in OpenAI's envelope (a failure mid-stream as ``error`` and
``response.failed``). ``gen_ai.operation.name`` is ``chat``, as the GenAI conventions say for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict

from ..errors import GatewayError, InvalidRequestError
from ..responses.flow import ResponsesFlow
from ..responses.stream import ResponsesAssembler, ResponsesEncoder
from ..responses.wire import ResponsesRequest, parse_items
from ..routing.tokens import estimate_prompt_tokens
from ..schema import _Open
from .operation import Operation, OperationDoc

if TYPE_CHECKING:
    from ..config import LimitsConfig
    from ..parts import GatewayParts
    from ..providers.base import ChatResult, Provider, UpstreamCall
    from .operation import Assembler, StreamEncoder

__all__ = ["DROPPED_TOOLS_HEADER", "ResponseObject", "ResponsesOperation"]

DROPPED_TOOLS_HEADER = b"x-rec-llm-dropped-tools"


class ResponseObject(_Open):
    """A Response, as handed to ``post_response`` hooks (``output`` items as plain dicts)."""

    model_config = ConfigDict(extra="allow", strict=False, defer_build=True)

    id: str
    object: str = "response"
    status: str | None = None
    model: str = ""
    output: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None


class _ResponsesEstimates:
    """``TokenEstimates`` of a ``/v1/responses`` request: the JSON size of the instructions, input
    items and tools (the history of a ``previous_response_id`` is not read yet when routing asks, so
    it is not counted)."""

    @staticmethod
    def prompt_tokens(request: ResponsesRequest) -> int:
        return estimate_prompt_tokens(request)

    @staticmethod
    def completion_tokens(request: ResponsesRequest) -> int:
        return request.max_output_tokens or 0


RESPONSES_ESTIMATES = _ResponsesEstimates()


class ResponsesOperation(Operation):
    """OpenAI Responses, JSON or typed SSE events. One per gateway (it holds the conversation store)."""

    name: ClassVar[str] = "chat"
    response_description: ClassVar[str] = (
        "A Response; with stream: true, its events (response.created ... response.completed, or error "
        "and response.failed)."
    )
    request_model = ResponsesRequest
    response_model = ResponseObject
    estimates = RESPONSES_ESTIMATES

    def __init__(self, flow: ResponsesFlow) -> None:
        self.flow = flow

    @classmethod
    def for_gateway(cls, gateway: GatewayParts) -> ResponsesOperation:
        return cls(ResponsesFlow(gateway.conversations, gateway.config.responses.builtin_tools))

    @classmethod
    def describe(cls) -> OperationDoc:
        from ..responses import openapi

        return OperationDoc(
            openapi.ResponsesCreate,
            openapi.ResponseObject,
            openapi.ResponseEvent,
            named_events=True,
            headers=(DROPPED_TOOLS_HEADER.decode(),),
        )

    def parse(self, body: bytes, limits: LimitsConfig) -> ResponsesRequest:
        request = ResponsesRequest.from_json(body)
        items = request.input_items()
        if len(items) > limits.max_messages:
            raise InvalidRequestError(
                f"Too many input items: {len(items)} (limit {limits.max_messages}).",
                param="input",
                code="too_many_messages",
            )
        parse_items(items)  # a malformed item is a 400 naming it, whichever upstream answers
        return request

    def streams(self, request: ResponsesRequest) -> bool:
        return bool(request.stream)

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        return await self.flow.complete(provider, call)

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        return self.flow.stream(provider, call)

    def stream_encoder(self, request: Any) -> StreamEncoder:
        return ResponsesEncoder()

    def assembler(self, keep_text: bool) -> Assembler:
        return ResponsesAssembler()

    def stream_failure(self, error: GatewayError, encoder: StreamEncoder) -> bytes:
        # The held terminal event (if any) is dropped: the stream did not end as it said.
        assert isinstance(encoder, ResponsesEncoder)
        return encoder.fail(error)

    def response_headers(self, request: ResponsesRequest) -> list[tuple[bytes, bytes]]:
        dropped = request.state.dropped_tools
        return [(DROPPED_TOOLS_HEADER, ", ".join(dropped).encode("latin-1", "replace"))] if dropped else []
