"""OpenRouter: OpenAI-compatible, plus its attribution headers (``HTTP-Referer``, ``X-Title``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from ..config import ProviderConfig
from .openai import OpenAIProvider, OpenAISettings

__all__ = ["OpenRouterProvider", "OpenRouterSettings"]


class OpenRouterSettings(OpenAISettings):
    model_config = ConfigDict(extra="forbid")

    http_referer: str | None = None
    """Your site's URL, shown on openrouter.ai rankings."""
    x_title: str | None = None
    """Your app's name, shown on openrouter.ai rankings."""


class OpenRouterProvider(OpenAIProvider):
    type_name = "openrouter"
    settings_model: ClassVar[type[ProviderConfig]] = OpenRouterSettings
    otel_provider_name = "openrouter"
    family_prefixes = ()
    default_base_url = "https://openrouter.ai/api/v1"
    price_provider = "openrouter"

    settings: OpenRouterSettings

    def extra_headers(self) -> dict[str, str]:
        headers = {}
        if self.settings.http_referer:
            headers["http-referer"] = self.settings.http_referer
        if self.settings.x_title:
            headers["x-title"] = self.settings.x_title
        return headers
