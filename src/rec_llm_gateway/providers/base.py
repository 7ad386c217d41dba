"""The Provider protocol: what a provider implements, and the types it exchanges with the gateway.

A provider turns an OpenAI chat request into one upstream call and the answer back into OpenAI
shapes. Two levels:

- ``Provider``: implement ``complete`` (returns a ``ChatResult``) and ``stream`` (yields OpenAI
  ``chat.completion.chunk`` dicts, the usage chunk with ``choices: []`` included). Use this for
  anything that is not plain HTTP (the built-in ``echo``, an in-process model).
- ``HTTPProvider`` (``providers/http.py``): implement the pure translation steps
  (``build_request``, ``parse_response``, ``stream_translator``, ``parse_error``); connection
  handling, timeouts, size caps, error mapping, SSE decoding and upstream timing are shared.

Custom providers subclass either and are registered by a plugin's ``register_providers`` hook.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pydantic_core

from ..config import ProviderConfig
from ..errors import BadGatewayError, GatewayError, InvalidRequestError
from ..pricing import FREE
from ..schema import ChatCompletionRequest
from ..usage import TokenUsage

if TYPE_CHECKING:
    from ..embeddings import EmbeddingResult

__all__ = [
    "ChatResult",
    "Provider",
    "StreamTranslator",
    "UpstreamCall",
    "parse_json",
    "stream_error",
    "unsupported_operation",
    "upstream_error_or",
]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class UpstreamCall:
    """One attempt against one provider. Per-request state lives here, never on the provider."""

    request: ChatCompletionRequest
    model: str
    """The provider's own name for the model (after ``model_map``)."""
    http: httpx.AsyncClient
    request_id: str
    transport: httpx.AsyncBaseTransport | None = None
    """The client's transport: the main upstream request goes straight to it, skipping the client's
    cookie, auth and redirect machinery (none of which a gateway uses; ~10% of a request's cost)."""
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    """Extra outbound headers the gateway adds (trace context); never the client's credentials."""
    upstream_seconds: float = 0.0
    """Time spent waiting on the upstream, added up by the provider (for ``overhead_ms``)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    """Longest single stream event (one SSE line or event) the upstream may send."""
    response_model: str | None = None
    """The model the upstream says answered, once known."""
    usage: TokenUsage | None = None
    """A stream's usage, once the upstream reported it (set by the provider; the gateway prices the
    call from it instead of parsing the usage chunk back)."""


@dataclass(slots=True)
class ChatResult:
    """A complete (non-streaming) answer: an OpenAI ``chat.completion`` dict and its usage."""

    response: dict[str, Any]
    usage: TokenUsage | None


class Provider:
    """Base of every provider. Subclass and set ``type_name``; see the module docstring.

    Args:
        name: the configured name (the key under ``providers:``).
        settings: the validated settings, an instance of ``settings_model``.
    """

    type_name: ClassVar[str] = ""
    settings_model: ClassVar[type[ProviderConfig]] = ProviderConfig
    otel_provider_name: ClassVar[str] = ""
    """``gen_ai.provider.name`` for telemetry (``openai``, ``anthropic``, ``gcp.gemini``, ...)."""
    family_prefixes: tuple[str, ...] = ()
    """Unprefixed model names starting with one of these route here when nothing else claims them."""
    default_base_url: str | None = None
    text_completions: ClassVar[bool] = False
    """Whether the upstream serves OpenAI's legacy ``/completions`` itself (``complete``/``stream``
    then get the ``CompletionRequest`` as it is); otherwise it is asked as a one-message chat."""
    price_provider: str | None = None
    """The genai-prices provider id used to price calls (``None``: look it up by ``base_url``;
    ``"free"``: every call costs 0). ``pricing:`` in the config overrides either."""

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        self.name = name
        self.settings = settings
        self.base_url = (settings.base_url or self.default_base_url or "").rstrip("/")
        self.price_provider = self._prices_from(settings)
        self._keys = itertools.cycle(settings.keys() or [""])
        self._secrets = tuple(settings.secret_values())
        self.total_timeout = settings.timeout.total
        parsed = urlsplit(self.base_url) if self.base_url else None
        self.server_address: str | None = parsed.hostname if parsed else None
        self.server_port: int | None = (
            (parsed.port or (443 if parsed.scheme == "https" else 80)) if parsed and parsed.hostname else None
        )

    def _prices_from(self, settings: ProviderConfig) -> str | None:
        """Whose price table applies (README, "Cost"): ``prices_from`` when set; the type's own
        at its own endpoint; at a custom ``base_url`` of a type that has a default (a vLLM or Ollama
        server speaking OpenAI's API), none: the price is found by that URL or not at all, so a
        ``gpt-4o`` served locally is not charged at OpenAI's price."""
        if settings.prices_from:
            return settings.prices_from
        default = (self.default_base_url or "").rstrip("/")
        if default and self.base_url != default and self.price_provider != FREE:
            return None
        return self.price_provider

    @property
    def type(self) -> str:
        return self.settings.type or self.type_name

    def next_key(self) -> str:
        """The next API key in rotation ("" when none is configured)."""
        return next(self._keys)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def upstream_model(self, model: str) -> str:
        """The provider's own name for a client-facing model name."""
        return self.settings.model_map.get(model, model)

    def configured_models(self) -> list[str]:
        """Client-facing model names the config gives this provider (``models``, ``model_map``);
        unprefixed requests for these route here."""
        return list(dict.fromkeys([*self.settings.models, *self.settings.model_map]))

    def model_ids(self) -> list[str]:
        """What ``/v1/models`` lists: the configured models, or the type's catalog when none are set."""
        configured = self.configured_models()
        if configured:
            return configured
        catalog = self.catalog_models()
        # Embedding models come with the chat catalog: a server behind another's protocol (an
        # OpenAI-compatible base_url) lists neither, only what its config names.
        return [*catalog, *self.catalog_embedding_models()] if catalog else catalog

    def catalog_embedding_models(self) -> list[str]:
        """Well-known embedding models of this provider type (listed beside ``catalog_models``)."""
        from ..catalog.embeddings import embedding_models_for

        return [info.id for info in embedding_models_for(self.type_name)]

    def catalog_models(self) -> list[str]:
        """Well-known models of this provider type, listed when the config names none."""
        return []

    def describe(self) -> dict[str, Any]:
        """What ``GET /providers`` shows: never a key."""
        return {
            "name": self.name,
            "type": self.type,
            "models": self.model_ids(),
            "base_url": self.base_url or None,
        }

    async def complete(self, call: UpstreamCall) -> ChatResult:
        raise NotImplementedError

    def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def embed(self, call: UpstreamCall) -> EmbeddingResult:
        """Embeddings for ``call.request`` (an ``EmbeddingRequest``): OpenAI's ``list`` body."""
        raise unsupported_operation(self, "embeddings")

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """Raise when the provider is not usable. The default assumes it is."""

    async def aclose(self) -> None:
        """Release anything the provider holds (the shared HTTP client is closed by the gateway)."""


class StreamTranslator:
    """Turns one upstream stream event into zero or more OpenAI chunk dicts. One per stream.

    The default understands OpenAI's own chunks (``data: {...}``, ``data: [DONE]``).
    """

    done: bool = False
    usage: TokenUsage | None = None
    """The call's usage once the upstream reported it (``HTTPProvider`` puts it on the call)."""

    def feed(self, data: Any) -> list[dict[str, Any]]:
        """``data`` is what ``HTTPProvider.iter_events`` yields: an SSE event's data bytes by default."""
        if data == b"[DONE]":
            self.done = True
            return []
        chunk = parse_json(data)
        if not isinstance(chunk, dict):
            raise BadGatewayError("the upstream sent a stream event that is not a JSON object")
        if "error" in chunk and "choices" not in chunk:
            raise stream_error(chunk["error"])
        usage = chunk.get("usage")
        if usage:
            self.usage = TokenUsage.from_openai(usage)
        return [chunk]

    def finish(self) -> list[dict[str, Any]]:
        """Chunks to emit when the upstream stream ends (after the last event)."""
        return []


def unsupported_operation(provider: Provider, operation: str) -> GatewayError:
    """A 400 for a request the provider's API has no equivalent of (embeddings on Anthropic)."""
    return InvalidRequestError(
        f"Provider '{provider.name}' (type '{provider.type}') does not serve {operation}; "
        "route this model to a provider that does.",
        param="model",
        code="unsupported_operation",
    )


def stream_error(error: Any) -> GatewayError:
    """An error event inside an upstream stream (OpenAI-style ``{"error": {...}}``)."""
    if isinstance(error, dict):
        message = str(error.get("message") or "the upstream reported an error mid-stream")
        code = error.get("code")  # an object or a list here used to break the error event
        return BadGatewayError(
            message,
            error_type=str(error.get("type") or "upstream_error"),
            code=str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None,
        )
    return BadGatewayError(f"the upstream reported an error mid-stream: {str(error)[:200]}")


def parse_json(body: bytes | str) -> Any:
    # pydantic-core's parser: ~4x faster than json.loads on stream chunks, and already a dependency.
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        raise BadGatewayError("the upstream returned a body that is not valid JSON") from None


def upstream_error_or(data: Any, what: str) -> GatewayError:
    """The error an upstream put in a 200 body (``{"error": {...}}``), else a 502 saying it returned
    ``what``."""
    if isinstance(data, dict) and "error" in data:
        return stream_error(data["error"])
    return BadGatewayError(f"the upstream returned {what}", code="upstream_bad_response")
