"""Anthropic: Claude through the Messages API (``POST /v1/messages``), translated both ways.

Example::

    providers:
      anthropic:
        api_key: ${ANTHROPIC_API_KEY}
        anthropic_version: "2023-06-01"        # the default
        anthropic_beta: [context-1m-2025-08-07] # optional beta flags
        default_max_tokens: 4096                # optional; see below

- The request is translated by ``request`` (system messages to ``system``, tool results
  to user turns, ``response_format`` to a forced tool, the parameter rule) and
  ``messages``; the answer and errors by ``response``, the stream by
  ``stream``. See ``docs/providers/anthropic.md``.
- Anthropic requires ``max_tokens``. When the client sends none, ``default_max_tokens`` is used, or
  else the model's catalogued max output capped at 8192 (4096 for models not in the catalog).
- Auth is ``x-api-key`` (rotated over ``api_keys``) plus ``anthropic-version``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import httpx
from pydantic import ConfigDict, Field

from ...config import ProviderConfig
from ...errors import GatewayError
from ..base import ChatResult, StreamTranslator, UpstreamCall
from ..http import HTTPProvider
from .errors import error_from_anthropic
from .request import json_tool_name, to_anthropic
from .response import from_anthropic
from .stream import AnthropicStreamTranslator

__all__ = ["AnthropicProvider", "AnthropicSettings"]


class AnthropicSettings(ProviderConfig):
    model_config = ConfigDict(extra="forbid")

    anthropic_version: str = Field("2023-06-01", min_length=1)
    """The ``anthropic-version`` header."""
    anthropic_beta: str | list[str] | None = None
    """Beta flags for the ``anthropic-beta`` header (a comma-separated string or a list)."""
    default_max_tokens: int | None = Field(None, gt=0)
    """``max_tokens`` when the client sends none (Anthropic requires one)."""


class AnthropicProvider(HTTPProvider):
    type_name = "anthropic"
    settings_model: ClassVar[type[ProviderConfig]] = AnthropicSettings
    otel_provider_name = "anthropic"
    family_prefixes: tuple[str, ...] = ("claude-",)
    default_base_url: str | None = "https://api.anthropic.com"
    price_provider: str | None = "anthropic"

    settings: AnthropicSettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        # Both "https://api.anthropic.com" and ".../v1" are common in configs; the paths add /v1.
        self.base_url = self.base_url.removesuffix("/v1")
        # parsed once: httpx parses a URL given as a string on every request (~20 us)
        self.messages_url = httpx.URL(f"{self.base_url}/v1/messages")
        self.count_tokens_url = httpx.URL(f"{self.base_url}/v1/messages/count_tokens")
        self._models_url = f"{self.base_url}/v1/models"
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": self.settings.anthropic_version,
        }
        beta = self.settings.anthropic_beta
        if beta:
            headers["anthropic-beta"] = beta if isinstance(beta, str) else ",".join(beta)
        self._headers = self.fixed_headers(headers)

    def catalog_models(self) -> list[str]:
        from ...catalog import models_for

        return [info.id for info in models_for("anthropic")]

    def auth_headers(self) -> dict[str, str]:
        key = self.next_key()
        return {"x-api-key": key} if key else {}

    def build_payload(self, call: UpstreamCall) -> dict[str, Any]:
        """The Anthropic request body for ``call`` (raises a 400 for what cannot be translated)."""
        return to_anthropic(
            call.request,
            call.model,
            stream=call.stream,
            default_max_tokens=self.settings.default_max_tokens,
            model_max_output=_max_output(call.model),
        ).payload

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        return self.post(call, self.messages_url, self.build_payload(call))

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        result = from_anthropic(data, json_tool_name(call.request))
        call.response_model = result.response["model"] or None
        return result

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        return AnthropicStreamTranslator(call, json_tool_name(call.request), self.name)

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> GatewayError:
        return error_from_anthropic(status, headers, body, self.name)

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """List one model: free, and it fails exactly when the key or the endpoint is wrong."""
        request = httpx.Request(
            "GET", self._models_url, params={"limit": "1"}, headers=self.request_headers()
        )
        await self.check_health_with(http, request)


@lru_cache(maxsize=512)
def _max_output(model: str) -> int | None:
    from ...catalog import lookup

    info = lookup(model, "anthropic")
    return info.max_output if info is not None else None
