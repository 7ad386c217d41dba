"""Google Gemini and Vertex AI: one wire format at two doors. ``provider`` (URLs, settings, both
provider classes), ``auth`` (Vertex OAuth tokens), ``request``, ``messages`` and ``schema`` (OpenAI
request -> ``generateContent``), ``response`` and ``stream`` (Gemini -> OpenAI), ``errors``."""

from __future__ import annotations

from .provider import GeminiProvider, GeminiSettings, VertexProvider, VertexSettings

__all__ = ["GeminiProvider", "GeminiSettings", "VertexProvider", "VertexSettings"]
