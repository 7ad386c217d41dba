"""OpenAI models (context window and max output from OpenAI's model pages)."""

from __future__ import annotations

from . import ModelInfo

MODELS = (
    ModelInfo("gpt-4.1", "openai", 1_047_576, 32_768, vision=True),
    ModelInfo("gpt-4.1-mini", "openai", 1_047_576, 32_768, vision=True),
    ModelInfo("gpt-4.1-nano", "openai", 1_047_576, 32_768, vision=True),
    ModelInfo("gpt-4o", "openai", 128_000, 16_384, vision=True),
    ModelInfo("gpt-4o-mini", "openai", 128_000, 16_384, vision=True),
    ModelInfo("gpt-4-turbo", "openai", 128_000, 4_096, vision=True),
    ModelInfo("gpt-4", "openai", 8_192, 8_192, json=False),
    ModelInfo("gpt-3.5-turbo", "openai", 16_385, 4_096),
    ModelInfo("gpt-5", "openai", 400_000, 128_000, vision=True, reasoning=True),
    ModelInfo("gpt-5-mini", "openai", 400_000, 128_000, vision=True, reasoning=True),
    ModelInfo("gpt-5-nano", "openai", 400_000, 128_000, vision=True, reasoning=True),
    ModelInfo("o1", "openai", 200_000, 100_000, vision=True, reasoning=True),
    ModelInfo("o3", "openai", 200_000, 100_000, vision=True, reasoning=True),
    ModelInfo("o3-mini", "openai", 200_000, 100_000, reasoning=True),
    ModelInfo("o4-mini", "openai", 200_000, 100_000, vision=True, reasoning=True),
)
