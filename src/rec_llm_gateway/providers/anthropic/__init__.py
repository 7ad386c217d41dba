"""Anthropic: Claude through the Messages API. ``provider`` (URLs, headers, settings), ``request`` and
``messages`` (OpenAI request -> Anthropic), ``response`` and ``stream`` (Anthropic -> OpenAI)."""

from __future__ import annotations

from .provider import AnthropicProvider, AnthropicSettings

__all__ = ["AnthropicProvider", "AnthropicSettings"]
