"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's Messages API on the pipeline.

What the pipeline sees is the chat request the Messages request translates to (so model resolution,
groups, limits, budgets, hooks and spans work as for chat), carrying the client's own body. Per
attempt, the operation picks the way to the deployment:

- Claude (Anthropic, Bedrock ``anthropic.*``, Vertex ``claude-*``): native, the client's bytes out
  and Anthropic's answer back unchanged (``messages.native``), unless a ``pre_request`` hook changed
  the request, which is then sent (translated by the provider) as the hook left it;
- anything else: the provider's own chat translation, its answer written in Anthropic's shape
  (``messages.from_chat``, ``messages.events``).

Errors use Anthropic's envelope. ``x_rec_llm`` never enters an Anthropic-shaped body (the SDK is
strict): a JSON answer carries it as ``x-rec-llm-*`` response headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import pydantic_core
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from ..errors import InvalidRequestError
from ..messages.events import EventWriter, sse_frame
from ..messages.from_chat import from_chat
from ..messages.native import NATIVE_KEY, NativeBody, NativeTarget, target_for
from ..messages.params import fit_to_model
from ..messages.to_chat import chat_payload
from ..messages.wire import CountTokensRequest, MessagesRequest, error_body, error_json
from ..routing.tokens import estimate_prompt_tokens
from ..schema import ChatCompletion, ChatCompletionRequest, _as_invalid_request
from ..streaming import StreamAssembler
from ..usage import TokenUsage
from .operation import Operation, OperationDoc

if TYPE_CHECKING:
    from ..config import LimitsConfig
    from ..errors import GatewayError
    from ..hooks import HookRunner
    from ..parts import GatewayParts
    from ..providers.base import ChatResult, Provider, UpstreamCall

__all__ = ["CountTokensOperation", "MessagesChatRequest", "MessagesOperation"]


class MessagesChatRequest(ChatCompletionRequest):
    """The chat request a Messages request translates to, with the client's body for Claude."""

    _native: NativeBody | None = PrivateAttr(default=None)
    _untranslatable: InvalidRequestError | None = PrivateAttr(default=None)
    """Why the request has no chat translation (Claude gets it natively all the same)."""
    _fingerprint: str | None = PrivateAttr(default=None)
    """The request as parsed, when ``pre_request`` hooks may change it (see ``native_body``)."""

    def native_body(self) -> NativeBody | None:
        """The client's body, unless a hook has changed the request since it was parsed."""
        native = self._native
        if native is None or self._fingerprint is None:
            return native
        return native if self.model_dump_json(exclude_unset=True) == self._fingerprint else None


def _native_of(request: Any) -> NativeBody | None:
    return request.native_body() if isinstance(request, MessagesChatRequest) else None


def _translated(request: Any, body: bytes, headers: dict[str, str], hooks: HookRunner) -> MessagesChatRequest:
    try:
        try:
            chat = MessagesChatRequest.model_validate(chat_payload(request))
        except ValidationError as invalid:  # a value the chat request refuses (max_tokens: 0)
            raise _as_invalid_request(invalid) from None
    except InvalidRequestError as error:
        # Only a translated attempt needs the translation: Anthropic itself judges what it gets.
        stand_in = {"model": request.model, "messages": [{"role": "user", "content": ""}]}
        if getattr(request, "stream", None):
            stand_in["stream"] = True
        chat = MessagesChatRequest.model_validate(stand_in)
        chat._untranslatable = error
    chat._native = NativeBody(
        body, request.model, headers.get("anthropic-version"), headers.get("anthropic-beta")
    )
    if hooks.has("pre_request"):
        chat._fingerprint = chat.model_dump_json(exclude_unset=True)
    return chat


def _for_translation(request: Any, provider: Provider, model: str) -> Any:
    untranslatable = getattr(request, "_untranslatable", None)
    if untranslatable is not None:
        raise untranslatable
    return fit_to_model(request, provider.type, model)


def extension_headers(response: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """``x_rec_llm`` as ``x-rec-llm-*`` response headers (where an Anthropic-shaped answer keeps it)."""
    extension = response.get("x_rec_llm")
    if not isinstance(extension, dict):
        return []
    return [
        (b"x-rec-llm-" + name.replace("_", "-").encode(), str(value).encode("latin-1", "replace"))
        for name, value in extension.items()
        if name != "request_id" and isinstance(value, str | int | float)  # x-request-id has it
    ]


class MessagesOperation(Operation):
    """Anthropic Messages, JSON or named SSE events; native to Claude, translated to the rest."""

    name: ClassVar[str] = "chat"
    request_model = ChatCompletionRequest
    response_model: ClassVar[type[BaseModel]] = ChatCompletion

    response_description: ClassVar[str] = "An Anthropic message; with stream: true, its named events."

    def __init__(self, hooks: HookRunner) -> None:
        self.hooks = hooks
        MessagesChatRequest.model_rebuild()  # built now, not on the first request

    @classmethod
    def describe(cls) -> OperationDoc:
        from ..messages import openapi

        return OperationDoc(
            openapi.MessagesCreate,
            openapi.AnthropicMessage,
            openapi.AnthropicStreamEvent,
            error=openapi.AnthropicError,
            named_events=True,
        )

    @classmethod
    def for_gateway(cls, gateway: GatewayParts) -> MessagesOperation:
        return cls(gateway.hooks)

    def parse(self, body: bytes, limits: LimitsConfig) -> Any:
        return self.parse_request(body, limits, {})

    def parse_request(self, body: bytes, limits: LimitsConfig, headers: dict[str, str]) -> Any:
        request = MessagesRequest.from_json(body)
        self.check_messages(len(request.messages), limits)
        return _translated(request, body, headers, self.hooks)

    def streams(self, request: Any) -> bool:
        return bool(request.stream)

    @staticmethod
    def check_messages(count: int, limits: LimitsConfig) -> None:
        if count > limits.max_messages:
            raise InvalidRequestError(
                f"Too many messages: {count} (limit {limits.max_messages}).",
                param="messages",
                code="too_many_messages",
            )

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        native = _native_of(call.request)
        target = target_for(provider, call.model) if native is not None else None
        if target is not None and native is not None:
            return await target.complete(call, native)
        call.request = _for_translation(call.request, provider, call.model)
        return await provider.complete(call)

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        native = _native_of(call.request)
        target = target_for(provider, call.model) if native is not None else None
        if target is not None and native is not None:
            return target.stream(call, native)
        call.request = _for_translation(call.request, provider, call.model)
        return provider.stream(call)

    # -- Anthropic's wire shape -----------------------------------------------------------------

    def answer_headers(self, response: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        return extension_headers(response)

    def json_body(self, response: dict[str, Any]) -> bytes:
        native = response.pop(NATIVE_KEY, None)
        if isinstance(native, bytes):
            return native
        usage = TokenUsage.from_openai(response.get("usage"))
        return pydantic_core.to_json(from_chat(response, usage, str(response.get("model") or "")))

    def stream_encoder(self, request: Any) -> MessagesEncoder:
        return MessagesEncoder(request.model)

    def assembler(self, keep_text: bool) -> MessagesAssembler:
        return MessagesAssembler(keep_text)

    def error_body(self, error: GatewayError) -> bytes:
        return error_json(error)

    def stream_error(self, error: GatewayError) -> bytes:
        return sse_frame(error_body(error))


class MessagesEncoder:
    """The stream's bytes: a native stream's as they came, a translated one's as Anthropic events."""

    __slots__ = ("_native", "_writer")

    def __init__(self, model: str) -> None:
        self._writer = EventWriter(model)
        self._native = False

    def feed(self, item: dict[str, Any]) -> bytes:
        raw = item.get(NATIVE_KEY)
        if raw is not None:
            self._native = True
            data: bytes = raw
            return data
        return self._writer.feed(item)

    def finish(self, extension: dict[str, Any] | None) -> bytes:
        # A native stream ended with Anthropic's own message_stop; x_rec_llm has no place in either.
        return b"" if self._native else self._writer.finish()

    def flush(self) -> bytes:
        return b""


class MessagesAssembler(StreamAssembler):
    """The chat assembler, fed the OpenAI chunks that ride beside a native stream's bytes."""

    def add(self, chunk: dict[str, Any]) -> None:
        if NATIVE_KEY in chunk:
            for inner in chunk["chunks"]:
                super().add(inner)
        else:
            super().add(chunk)


# -- count_tokens -----------------------------------------------------------------------------------


class TokenCount(BaseModel):
    """What ``count_tokens`` answers (and ``post_response`` sees)."""

    model_config = ConfigDict(extra="allow")

    input_tokens: int


class CountTokensOperation(MessagesOperation):
    """``POST /v1/messages/count_tokens``: Anthropic (and Vertex, Bedrock) count Claude's tokens
    natively; for other models the gateway's estimate answers (about four characters a token)."""

    name: ClassVar[str] = "count_tokens"
    response_model = TokenCount
    response_description: ClassVar[str] = "The number of input tokens the request would take."

    @classmethod
    def describe(cls) -> OperationDoc:
        from ..messages import openapi

        return OperationDoc(openapi.CountTokensCreate, TokenCount, error=openapi.AnthropicError)

    def parse_request(self, body: bytes, limits: LimitsConfig, headers: dict[str, str]) -> Any:
        request = CountTokensRequest.from_json(body)
        self.check_messages(len(request.messages), limits)
        return _translated(request, body, headers, self.hooks)

    def streams(self, request: Any) -> bool:
        return False

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        from ..providers.base import ChatResult

        native = _native_of(call.request)
        target: NativeTarget | None = target_for(provider, call.model) if native is not None else None
        if target is not None and native is not None:
            body = await target.count_tokens(call, native)
            return ChatResult(response={NATIVE_KEY: body}, usage=None)
        counted = estimate_prompt_tokens(_for_translation(call.request, provider, call.model))
        return ChatResult(response={"input_tokens": counted}, usage=None)

    def json_body(self, response: dict[str, Any]) -> bytes:
        native = response.pop(NATIVE_KEY, None)
        if isinstance(native, bytes):
            response.update(pydantic_core.from_json(native))
            return native
        return pydantic_core.to_json({"input_tokens": response["input_tokens"]})
