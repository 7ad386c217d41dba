"""Gemini models, for both the ``gemini`` (Generative Language API) and ``vertex`` provider types.

Vertex AI serves the same Gemini models under the same ids, so one list is written once and
catalogued under both types. Text-chat models only (no TTS, Live, image-generation or embedding
models). Sources: Google's model pages for the 2.5 and 3 families (1,048,576-token context, 65,536
output tokens); the ids of later models and which ones are deprecated come from the genai-prices
table the gateway prices with; their limits are assumed to match their family until Google
publishes otherwise.
"""

from __future__ import annotations

from dataclasses import replace

from . import ModelInfo

_ONE_MILLION = 1_048_576
_MAX_OUTPUT = 65_536


def _model(model_id: str) -> ModelInfo:
    return ModelInfo(model_id, "gemini", _ONE_MILLION, _MAX_OUTPUT, vision=True, reasoning=True)


_GEMINI = (
    _model("gemini-4-argon"),
    _model("gemini-3.8-flash"),
    _model("gemini-3.7-flash"),
    _model("gemini-3.6-flash"),
    _model("gemini-3.5-flash"),
    _model("gemini-3.5-flash-lite"),
    _model("gemini-3.1-pro-preview"),
    _model("gemini-3.1-flash-lite"),
    _model("gemini-3-flash-preview"),
    _model("gemini-2.5-pro"),
    _model("gemini-2.5-flash"),
    _model("gemini-2.5-flash-lite"),
)

MODELS = (*_GEMINI, *(replace(info, provider="vertex") for info in _GEMINI))
