"""Provider types by name: the built-in ones (imported on first use) and those plugins register."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from ..config import ProviderConfig, config_error
from ..errors import ConfigError
from .base import Provider

__all__ = ["BUILTIN_TYPES", "ProviderRegistry"]

logger = logging.getLogger("rec_llm_gateway.providers")

# type name -> "module:attribute" under rec_llm_gateway.providers; imported only when configured.
BUILTIN_TYPES: Final[dict[str, str]] = {
    "openai": "openai:OpenAIProvider",
    "azure": "azure:AzureProvider",
    "anthropic": "anthropic:AnthropicProvider",
    "openrouter": "openrouter:OpenRouterProvider",
    "bedrock": "bedrock:BedrockProvider",
    "echo": "echo:EchoProvider",
    "gemini": "gemini:GeminiProvider",
    "vertex": "gemini:VertexProvider",
    **{
        preset: f"openai:OPENAI_COMPATIBLE_PRESETS[{preset}]"
        for preset in ("groq", "mistral", "together", "deepseek", "fireworks", "xai", "ollama", "vllm")
    },
}


class ProviderRegistry:
    """Maps a provider ``type`` to its class and builds configured providers."""

    def __init__(self) -> None:
        self._custom: dict[str, type[Provider]] = {}

    def register(self, types: Mapping[str, type[Provider]], source: str = "a plugin") -> None:
        for type_name, cls in types.items():
            if not (isinstance(cls, type) and issubclass(cls, Provider)):
                raise ConfigError(
                    f"{source}: register_providers returned {cls!r} for type {type_name!r}; "
                    "it must be a subclass of rec_llm_gateway.providers.Provider"
                )
            if type_name in BUILTIN_TYPES:
                logger.info("%s replaces the built-in provider type %r", source, type_name)
            self._custom[type_name] = cls

    def get(self, type_name: str) -> type[Provider] | None:
        if type_name in self._custom:
            return self._custom[type_name]
        target = BUILTIN_TYPES.get(type_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        if "[" in attribute:
            table, _, key = attribute.partition("[")
            found: type[Provider] = getattr(module, table)[key.rstrip("]")]
            return found
        cls: type[Provider] = getattr(module, attribute)
        return cls

    def known_types(self) -> list[str]:
        return sorted({*BUILTIN_TYPES, *self._custom})

    def build(self, name: str, config: ProviderConfig) -> Provider:
        """Validate ``config`` against its type's settings and construct the provider."""
        type_name = config.type or name
        cls = self.get(type_name)
        if cls is None:
            where = f"providers.{name}.type" if config.type else f"providers.{name}"
            raise ConfigError(
                f"{where}: unknown provider type {type_name!r}; set 'type' to one of "
                f"{', '.join(self.known_types())}, or register it with a plugin's register_providers hook"
            )
        try:
            settings = cls.settings_model.model_validate(config.settings_dict())
        except ValidationError as exc:
            raise config_error(exc, prefix=f"providers.{name}", hint=f" for type '{type_name}'") from None
        return cls(name, settings)
