"""Embeddings for Gemini (the Generative Language API) and Vertex AI.

- Gemini: one input goes to ``models/{model}:embedContent`` (``{"content": {"parts": [{"text"}]}}``
  -> ``{"embedding": {"values"}}``), several to ``:batchEmbedContents`` (``{"requests": [...]}``
  -> ``{"embeddings": [{"values"}]}``, at most 100 per call).
- Vertex AI: ``{model}:predict`` with ``{"instances": [{"content"}], "parameters": {...}}`` ->
  ``{"predictions": [{"embeddings": {"values", "statistics": {"token_count"}}}]}``; how many
  instances a call may carry depends on the model (one for gemini-embedding, 250 for
  text-embedding-005), from the catalog.

``dimensions`` becomes ``outputDimensionality``. Google's task types (``RETRIEVAL_DOCUMENT``,
``RETRIEVAL_QUERY``, ``SEMANTIC_SIMILARITY``, ...) and a document ``title`` are extra fields of the
request: ``task_type`` and ``title``. Gemini's API counts no tokens for embeddings: the gateway's
estimate stands in (``embedding_response``); Vertex reports a count per input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...catalog.embeddings import lookup_embedding
from ...embeddings import EmbeddingBatch
from ...errors import InvalidRequestError
from ...schema_embeddings import EmbeddingRequest
from ...usage import token_count
from ..base import upstream_error_or

__all__ = [
    "GEMINI_EMBEDDINGS",
    "GeminiEmbeddings",
    "VertexEmbeddings",
    "gemini_embed_method",
    "vertex_embeddings",
]

GEMINI_MAX_BATCH: Final = 100
VERTEX_MAX_BATCH: Final = 250


def gemini_embed_method(count: int) -> str:
    """The Gemini API method for a batch of ``count`` inputs."""
    return "embedContent" if count == 1 else "batchEmbedContents"


class GeminiEmbeddings:
    """The Gemini API's wire format."""

    max_batch: int = GEMINI_MAX_BATCH

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        options = _options(request, camel=True)
        if len(inputs) == 1:
            return {"content": _content(inputs[0]), **options}
        name = f"models/{model.removeprefix('models/')}"
        return {"requests": [{"model": name, "content": _content(text), **options} for text in inputs]}

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        if not isinstance(data, dict):
            raise upstream_error_or(data, "a response that is not a JSON object")
        if count == 1 and "embedding" in data:
            vectors = [data["embedding"]["values"]]
        elif isinstance(data.get("embeddings"), list):
            vectors = [item["values"] for item in data["embeddings"]]
        else:
            raise upstream_error_or(data, "a response without embeddings")
        usage = data.get("usageMetadata")
        tokens = token_count(usage.get("promptTokenCount")) if isinstance(usage, dict) else 0
        return EmbeddingBatch(vectors=vectors, prompt_tokens=tokens or None)


class VertexEmbeddings:
    """Vertex AI's ``predict`` wire format for text-embedding models."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        instance_options = _options(request, camel=False)
        parameters = {}
        dimensions = instance_options.pop("outputDimensionality", None)
        if dimensions is not None:
            parameters["outputDimensionality"] = dimensions
        body: dict[str, Any] = {"instances": [{"content": text, **instance_options} for text in inputs]}
        if parameters:
            body["parameters"] = parameters
        return body

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        predictions = data.get("predictions") if isinstance(data, dict) else None
        if not isinstance(predictions, list):
            raise upstream_error_or(data, "a response without 'predictions'")
        vectors = []
        tokens = 0
        for prediction in predictions:
            embeddings = prediction["embeddings"]
            vectors.append(embeddings["values"])
            statistics = embeddings.get("statistics")
            if isinstance(statistics, dict):
                # Vertex writes the count as a float (``5.0``).
                count_value = statistics.get("token_count")
                tokens += token_count(int(count_value) if isinstance(count_value, float) else count_value)
        return EmbeddingBatch(vectors=vectors, prompt_tokens=tokens or None)


def vertex_embeddings(model: str) -> VertexEmbeddings:
    """Vertex's dialect for ``model``, with that model's limit on instances per call."""
    info = lookup_embedding(model, "vertex")
    return VertexEmbeddings(info.max_batch if info is not None else VERTEX_MAX_BATCH)


def _content(text: str) -> dict[str, Any]:
    return {"parts": [{"text": text}]}


def _options(request: EmbeddingRequest, *, camel: bool) -> dict[str, Any]:
    """``taskType`` / ``title`` / ``outputDimensionality`` from the request (Vertex spells the first
    two in snake case inside an instance)."""
    options: dict[str, Any] = {}
    extra = request.model_extra or {}
    for name, camel_name in (("task_type", "taskType"), ("title", "title")):
        value = extra.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise InvalidRequestError(
                f"Invalid value for '{name}': a non-empty string is expected.", param=name
            )
        options[camel_name if camel else name] = value
    if request.dimensions is not None:
        options["outputDimensionality"] = request.dimensions
    return options


GEMINI_EMBEDDINGS: Final = GeminiEmbeddings()
