"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, Groq, Mistral, Together, DeepSeek, ...).

The request passes through as the client sent it (unknown parameters included); only ``model`` is
replaced by the provider's own name and, for streams, usage is requested so the gateway can always
price the call (``stream_options.include_usage``; the gateway strips the usage chunk again when the
client did not ask for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import ConfigDict

from ..config import ProviderConfig
from ..errors import BadGatewayError
from ..responses.native import NativeEvents, native_payload, parse_native_response
from ..responses.wire import ResponsesRequest
from ..schema_completions import CompletionRequest
from ..usage import TokenUsage
from .base import ChatResult, StreamTranslator, UpstreamCall, stream_error
from .http import HTTPProvider
from .openai_embeddings import OPENAI_EMBEDDINGS

if TYPE_CHECKING:
    from ..embeddings import EmbeddingDialect
    from ..schema_embeddings import EmbeddingRequest

__all__ = ["OPENAI_COMPATIBLE_PRESETS", "OpenAIProvider", "OpenAISettings"]


class OpenAISettings(ProviderConfig):
    model_config = ConfigDict(extra="forbid")

    stream_usage: bool = True
    """Ask for usage in streams. Turn off for servers that reject ``stream_options``."""
    organization: str | None = None
    project: str | None = None
    responses_api: bool | None = None
    """Whether the server serves ``/responses`` itself (``/v1/responses`` then passes through);
    otherwise it is asked through chat completions. Default: yes for ``openai`` and ``azure``, no for
    the presets (groq, ollama, ...)."""


class OpenAIProvider(HTTPProvider):
    """OpenAI's API: chat completions, legacy text completions and embeddings, all passed through."""

    type_name = "openai"
    settings_model: ClassVar[type[ProviderConfig]] = OpenAISettings
    otel_provider_name = "openai"
    family_prefixes: tuple[str, ...] = ("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-")
    default_base_url: str | None = "https://api.openai.com/v1"
    price_provider: str | None = "openai"
    text_completions: ClassVar[bool] = True
    responses_by_default: ClassVar[bool] = True

    settings: OpenAISettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        # Parsed once, not per request.
        self._url = httpx.URL(f"{self.base_url}/chat/completions")
        self._text_url = httpx.URL(f"{self.base_url}/completions")
        self._embeddings_url = httpx.URL(f"{self.base_url}/embeddings")
        self._responses_url = httpx.URL(f"{self.base_url}/responses")
        self.speaks_responses = (
            self.settings.responses_api
            if self.settings.responses_api is not None
            else self.responses_by_default
        )
        """Whether ``/v1/responses`` passes through to this upstream (see ``responses/native.py``)."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.settings.organization:
            headers["openai-organization"] = self.settings.organization
        if self.settings.project:
            headers["openai-project"] = self.settings.project
        headers.update(self.extra_headers())
        self._headers = self.fixed_headers(headers)

    def catalog_models(self) -> list[str]:
        if self.base_url != self.default_base_url or type(self) is not OpenAIProvider:
            return []  # another server behind the OpenAI protocol: only its configured models
        from ..catalog import models_for

        return [info.id for info in models_for("openai")]

    def extra_headers(self) -> dict[str, str]:
        """Fixed headers a subclass adds (OpenRouter attribution)."""
        return {}

    def auth_headers(self) -> dict[str, str]:
        key = self.next_key()
        return {"authorization": f"Bearer {key}"} if key else {}

    def build_payload(self, call: UpstreamCall) -> dict[str, Any]:
        payload = call.request.to_payload()
        payload["model"] = call.model
        if call.stream:
            payload["stream"] = True
            if self.settings.stream_usage:
                options = dict(payload.get("stream_options") or {})
                options["include_usage"] = True
                payload["stream_options"] = options
        return payload

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        if isinstance(call.request, ResponsesRequest):
            return self.post(
                call, self.responses_url(call), native_payload(call.request, call.model, call.stream)
            )
        url = self._text_url if isinstance(call.request, CompletionRequest) else self._url
        return self.post(call, url, self.build_payload(call))

    # -- embeddings: passed through ----------------------------------------------------------------

    def embedding_dialect(self, model: str) -> EmbeddingDialect:
        return OPENAI_EMBEDDINGS

    def embedding_inputs(self, request: EmbeddingRequest) -> Sequence[Any]:
        return request.inputs  # token ids too

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        return self.post(call, self._embeddings_url, payload)

    def responses_url(self, call: UpstreamCall) -> httpx.URL:
        return self._responses_url

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        if isinstance(call.request, ResponsesRequest):
            return parse_native_response(data, call, self.name)
        return parse_openai_completion(data, call, self.name)

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """``GET /models``: free, and it proves the key works."""
        request = httpx.Request("GET", f"{self.base_url}/models", headers=self.request_headers())
        await self.check_health_with(http, request)

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        if isinstance(call.request, ResponsesRequest):
            return NativeEvents()
        return StreamTranslator()


def parse_openai_completion(data: Any, call: UpstreamCall, provider: str) -> ChatResult:
    """Check an OpenAI ``chat.completion`` body and read its usage."""
    if not isinstance(data, dict):
        raise BadGatewayError(f"upstream '{provider}' returned a response that is not a JSON object")
    if not isinstance(data.get("choices"), list):
        if "error" in data:  # some servers answer 200 with an error body
            raise stream_error(data["error"])
        raise BadGatewayError(f"upstream '{provider}' returned a response without 'choices'")
    call.response_model = data.get("model") if isinstance(data.get("model"), str) else None
    return ChatResult(response=data, usage=TokenUsage.from_openai(data.get("usage")))


def _preset(type_name: str, base_url: str, otel_name: str) -> type[OpenAIProvider]:
    return type(
        f"{type_name.title()}Provider",
        (OpenAIProvider,),
        {
            "type_name": type_name,
            "default_base_url": base_url,
            "otel_provider_name": otel_name,
            "price_provider": None,
            "family_prefixes": (),
            "responses_by_default": False,
            "__doc__": f"OpenAI-compatible preset for {type_name} ({base_url}).",
        },
    )


# Popular OpenAI-compatible servers: `providers: {groq: {api_key: ...}}` works without a base_url.
OPENAI_COMPATIBLE_PRESETS: dict[str, type[OpenAIProvider]] = {
    preset.type_name: preset
    for preset in (
        _preset("groq", "https://api.groq.com/openai/v1", "groq"),
        _preset("mistral", "https://api.mistral.ai/v1", "mistral_ai"),
        _preset("together", "https://api.together.xyz/v1", "together"),
        _preset("deepseek", "https://api.deepseek.com/v1", "deepseek"),
        _preset("fireworks", "https://api.fireworks.ai/inference/v1", "fireworks"),
        _preset("xai", "https://api.x.ai/v1", "x_ai"),
        _preset("ollama", "http://localhost:11434/v1", "ollama"),
        _preset("vllm", "http://localhost:8000/v1", "vllm"),
    )
}
