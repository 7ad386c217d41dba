"""Embedding models: output size, which ``dimensions`` each accepts, input limit, inputs per call.

Sources: OpenAI's model pages (text-embedding-3: any size up to the full one; ada-002: fixed),
Google's Gemini API and Vertex AI embedding pages (gemini-embedding: 128 to 3,072; Vertex's
``predict`` takes one instance per call for gemini-embedding, 250 for text-embedding-005), the AWS
Bedrock model parameters pages (Titan v2: 256, 512 or 1,024, one text per call; Cohere Embed: 96
texts per call, v4 with 256 to 1,536 in four steps). ``gemini-embedding-2``'s limits are assumed to
match gemini-embedding-001 until Google publishes otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

__all__ = ["EmbeddingModelInfo", "embedding_models_for", "lookup_embedding"]


@dataclass(frozen=True, slots=True)
class EmbeddingModelInfo:
    id: str
    provider: str
    """The provider type that serves it (``openai``, ``gemini``, ``vertex``, ``bedrock``, ``echo``)."""
    dimensions: int
    """The size of a vector when the request sets no ``dimensions``."""
    max_input_tokens: int
    max_batch: int
    """Inputs one upstream call may carry; larger requests are split."""
    min_dimensions: int | None = None
    """Any ``dimensions`` from this up to ``dimensions`` is accepted (Matryoshka models)."""
    allowed_dimensions: tuple[int, ...] = ()
    """Exactly these ``dimensions`` are accepted. Neither this nor ``min_dimensions``: fixed size."""

    def dimensions_problem(self, requested: int) -> str | None:
        """Why ``requested`` is not a size this model gives (``None`` when it is)."""
        if requested == self.dimensions or requested in self.allowed_dimensions:
            return None
        if self.min_dimensions is not None and self.min_dimensions <= requested <= self.dimensions:
            return None
        if self.allowed_dimensions:
            sizes = ", ".join(str(size) for size in sorted({*self.allowed_dimensions, self.dimensions}))
            return f"'{self.id}' gives vectors of {sizes} dimensions"
        if self.min_dimensions is not None:
            return f"'{self.id}' gives vectors of {self.min_dimensions} to {self.dimensions} dimensions"
        return f"'{self.id}' always gives vectors of {self.dimensions} dimensions"

    def describe(self) -> dict[str, object]:
        """Extra fields for ``/v1/models`` entries."""
        described: dict[str, object] = {
            "kind": "embedding",
            "dimensions": self.dimensions,
            "max_input_tokens": self.max_input_tokens,
        }
        if self.min_dimensions is not None:
            described["dimensions_range"] = [self.min_dimensions, self.dimensions]
        elif self.allowed_dimensions:
            described["dimensions_allowed"] = sorted({*self.allowed_dimensions, self.dimensions})
        return described


_OPENAI = (
    EmbeddingModelInfo("text-embedding-3-small", "openai", 1536, 8191, 2048, min_dimensions=1),
    EmbeddingModelInfo("text-embedding-3-large", "openai", 3072, 8191, 2048, min_dimensions=1),
    EmbeddingModelInfo("text-embedding-ada-002", "openai", 1536, 8191, 2048),
)
_GEMINI = (
    EmbeddingModelInfo("gemini-embedding-001", "gemini", 3072, 2048, 100, min_dimensions=128),
    EmbeddingModelInfo("gemini-embedding-2", "gemini", 3072, 2048, 100, min_dimensions=128),
)
_VERTEX = (
    *(replace(info, provider="vertex", max_batch=1) for info in _GEMINI),
    EmbeddingModelInfo("text-embedding-005", "vertex", 768, 2048, 250, min_dimensions=1),
    EmbeddingModelInfo("text-multilingual-embedding-002", "vertex", 768, 2048, 250, min_dimensions=1),
)
_BEDROCK = (
    EmbeddingModelInfo(
        "amazon.titan-embed-text-v2:0", "bedrock", 1024, 8192, 1, allowed_dimensions=(256, 512)
    ),
    EmbeddingModelInfo("amazon.titan-embed-text-v1", "bedrock", 1536, 8192, 1),
    EmbeddingModelInfo("cohere.embed-english-v3", "bedrock", 1024, 512, 96),
    EmbeddingModelInfo("cohere.embed-multilingual-v3", "bedrock", 1024, 512, 96),
    EmbeddingModelInfo(
        "cohere.embed-v4:0", "bedrock", 1536, 128_000, 96, allowed_dimensions=(256, 512, 1024)
    ),
)
_ECHO = (EmbeddingModelInfo("echo-embed-1", "echo", 256, 1_000_000, 1_000_000, min_dimensions=1),)


@cache
def _table() -> dict[str, dict[str, EmbeddingModelInfo]]:
    table: dict[str, dict[str, EmbeddingModelInfo]] = {}
    for info in (*_OPENAI, *_GEMINI, *_VERTEX, *_BEDROCK, *_ECHO):
        table.setdefault(info.provider, {})[info.id] = info
    table["azure"] = {info.id: replace(info, provider="azure") for info in _OPENAI}
    return table


def embedding_models_for(provider_type: str) -> list[EmbeddingModelInfo]:
    """Every catalogued embedding model of a provider type."""
    return list(_table().get(provider_type, {}).values())


def lookup_embedding(model: str, provider_type: str | None = None) -> EmbeddingModelInfo | None:
    """The entry for ``model``: of ``provider_type`` when given and known there, else of any type
    (an OpenAI-compatible server or ``echo`` answering for ``text-embedding-3-small`` gives its
    sizes). A Bedrock geography prefix (``us.cohere.embed-v4:0``) is looked through."""
    table = _table()
    tables = [table.get(provider_type, {})] if provider_type else []
    tables.extend(table.values())
    for candidate in (model, model.split(".", 1)[1] if model.count(".") > 1 else model):
        for entries in tables:
            if candidate in entries:
                return entries[candidate]
    return None
