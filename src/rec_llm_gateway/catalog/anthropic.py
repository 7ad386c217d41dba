"""Anthropic Claude models (context window and max output from Anthropic's models overview).

Ids are the API's own: the moving aliases (``claude-sonnet-4-5``) and, where a dated snapshot does
not start with its alias (``claude-opus-4-20250514`` vs ``claude-opus-4-0``), the snapshot too.
Dated ids that extend an alias (``claude-sonnet-4-5-20250929``) match it by prefix.
"""

from __future__ import annotations

from . import ModelInfo

MODELS = (
    ModelInfo("claude-opus-4-5", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-sonnet-4-5", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-haiku-4-5", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-opus-4-1", "anthropic", 200_000, 32_000, vision=True, reasoning=True),
    ModelInfo("claude-opus-4-0", "anthropic", 200_000, 32_000, vision=True, reasoning=True),
    ModelInfo("claude-opus-4-20250514", "anthropic", 200_000, 32_000, vision=True, reasoning=True),
    ModelInfo("claude-sonnet-4-0", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-sonnet-4-20250514", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-3-7-sonnet-latest", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-3-7-sonnet-20250219", "anthropic", 200_000, 64_000, vision=True, reasoning=True),
    ModelInfo("claude-3-5-haiku-latest", "anthropic", 200_000, 8_192, vision=True),
    ModelInfo("claude-3-5-haiku-20241022", "anthropic", 200_000, 8_192, vision=True),
    ModelInfo("claude-3-haiku-20240307", "anthropic", 200_000, 4_096, vision=True),
)
