"""AWS Bedrock through Converse / ConverseStream. ``provider`` (URLs, settings), ``auth`` (SigV4),
``request`` and ``messages`` (OpenAI request -> Converse), ``images`` (fetching image URLs),
``response`` and ``stream`` (Converse -> OpenAI), ``eventstream`` (the binary stream framing)."""

from __future__ import annotations

from .provider import BedrockProvider, BedrockSettings

__all__ = ["BedrockProvider", "BedrockSettings"]
