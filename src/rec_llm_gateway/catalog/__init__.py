"""The model catalog: what each provider type's current models can do.

Used for ``/v1/models`` (when a provider's config lists no models), for context-window checks and
fallbacks, and for token estimates. Entries are plain data, one module per provider type; a model
id matches its own entry or the longest entry it starts with (``gpt-4o-2024-08-06`` -> ``gpt-4o``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

__all__ = ["ModelInfo", "lookup", "models_for"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    provider: str
    """The provider type that serves it (``openai``, ``anthropic``, ``gemini``, ``bedrock``)."""
    context_window: int
    max_output: int
    tools: bool = True
    vision: bool = False
    json: bool = True
    streaming: bool = True
    reasoning: bool = False

    def describe(self) -> dict[str, object]:
        """Extra fields for ``/v1/models`` entries."""
        return {
            "kind": "chat",
            "context_window": self.context_window,
            "max_output_tokens": self.max_output,
            "capabilities": {
                "tools": self.tools,
                "vision": self.vision,
                "json": self.json,
                "streaming": self.streaming,
                "reasoning": self.reasoning,
            },
        }


@cache
def _table() -> dict[str, dict[str, ModelInfo]]:
    from . import anthropic, bedrock, gemini, openai

    table: dict[str, dict[str, ModelInfo]] = {}
    for module in (openai, anthropic, bedrock, gemini):
        for info in module.MODELS:
            table.setdefault(info.provider, {})[info.id] = info
    return table


def models_for(provider_type: str) -> list[ModelInfo]:
    """Every catalogued model of a provider type."""
    return list(_table().get(provider_type, {}).values())


def lookup(model: str, provider_type: str | None = None) -> ModelInfo | None:
    """The catalog entry for ``model`` (exactly, or by its longest catalogued prefix)."""
    tables = [_table().get(provider_type, {})] if provider_type else list(_table().values())
    for table in tables:
        if model in table:
            return table[model]
    best: ModelInfo | None = None
    for table in tables:
        for model_id, info in table.items():
            if model.startswith(model_id) and (best is None or len(model_id) > len(best.id)):
                best = info
    return best
