"""Azure OpenAI: the OpenAI wire format at a deployment URL.

- URL ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...``; the deployment
  is ``deployments[model]`` or the model name itself; the body's ``model`` is ignored by Azure.
- Auth header ``api-key`` (or ``Authorization: Bearer`` with ``auth: entra`` and a token as key).
- Streams open with a frame that only carries ``prompt_filter_results`` (empty id, ``choices: []``);
  it is dropped. A choice filtered by Azure's content policy keeps ``finish_reason: content_filter``
  and gets an empty assistant message, so OpenAI clients can read it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import ConfigDict, Field, model_validator

from ..config import ProviderConfig
from ..responses.wire import ResponsesRequest
from ..schema_completions import CompletionRequest
from .base import ChatResult, StreamTranslator, UpstreamCall
from .http import path_segment
from .openai import OpenAIProvider, OpenAISettings, parse_openai_completion

__all__ = ["AzureProvider", "AzureSettings"]


class AzureSettings(OpenAISettings):
    model_config = ConfigDict(extra="forbid")

    api_version: str = Field(min_length=1)
    deployments: dict[str, str] = Field(default_factory=dict)
    """Client-facing model name -> Azure deployment name."""
    auth: Literal["api-key", "entra"] = "api-key"

    @model_validator(mode="after")
    def _need_base_url(self) -> AzureSettings:
        if not self.base_url:
            raise ValueError("base_url is required for type 'azure' (https://<resource>.openai.azure.com)")
        return self


class AzureProvider(OpenAIProvider):
    type_name = "azure"
    settings_model: ClassVar[type[ProviderConfig]] = AzureSettings
    otel_provider_name = "azure.ai.openai"
    family_prefixes = ()
    default_base_url = None
    price_provider = "azure"

    settings: AzureSettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        self.base_url = self.base_url.removesuffix("/openai")
        self._params = {"api-version": self.settings.api_version}
        self._urls: dict[tuple[str, str], httpx.URL] = {}
        # Azure's v1 API (GA since 2025-08) takes the deployment as ``model`` and no api-version.
        self._responses_url = httpx.URL(f"{self.base_url}/openai/v1/responses")

    def auth_headers(self) -> dict[str, str]:
        key = self.next_key()
        if not key:
            return {}
        return {"authorization": f"Bearer {key}"} if self.settings.auth == "entra" else {"api-key": key}

    def upstream_model(self, model: str) -> str:
        model = super().upstream_model(model)
        return self.settings.deployments.get(model, model)

    def configured_models(self) -> list[str]:
        return list(dict.fromkeys([*super().configured_models(), *self.settings.deployments]))

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        if isinstance(call.request, ResponsesRequest):
            return super().build_request(call)
        method = "completions" if isinstance(call.request, CompletionRequest) else "chat/completions"
        return self.post(call, self._deployment_url(call.model, method), self.build_payload(call))

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        return self.post(call, self._deployment_url(call.model, "embeddings"), payload)

    def _deployment_url(self, deployment: str, method: str) -> httpx.URL:
        url = self._urls.get((deployment, method))
        if url is None:  # parsed once per deployment, not per request
            path = f"/openai/deployments/{path_segment(deployment)}/{method}"
            url = httpx.URL(f"{self.base_url}{path}", params=self._params)
            if len(self._urls) < 1024:
                self._urls[deployment, method] = url
        return url

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """``GET /openai/models``: lists the resource's models, proving the key works."""
        url = f"{self.base_url}/openai/models"
        request = httpx.Request("GET", url, params=self._params, headers=self.request_headers())
        await self.check_health_with(http, request)

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        if isinstance(call.request, ResponsesRequest):
            return super().parse_response(data, call)
        result = parse_openai_completion(data, call, self.name)
        for choice in result.response["choices"]:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if message is None:
                # Azure omits the message of a choice its content filter stopped.
                choice["message"] = {"role": "assistant", "content": None, "refusal": None}
            elif isinstance(message, dict):
                message.setdefault("refusal", None)  # OpenAI's spec: null when there is none
        return result

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        if isinstance(call.request, ResponsesRequest):
            return super().stream_translator(call)
        return AzureStreamTranslator()


class AzureStreamTranslator(StreamTranslator):
    def feed(self, data: Any) -> list[dict[str, Any]]:
        chunks = super().feed(data)
        # The prompt-filter frame: no id, no choices, no usage. Not an OpenAI chunk; drop it.
        return [chunk for chunk in chunks if chunk.get("id") or chunk.get("choices") or chunk.get("usage")]
