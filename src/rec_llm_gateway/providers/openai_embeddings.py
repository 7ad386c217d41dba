"""Embeddings for OpenAI, Azure and every OpenAI-compatible server: the request passes through.

Only ``model`` is replaced by the provider's own name (and ``input`` by a slice when a request has
more inputs than one call may carry); unknown parameters reach the upstream untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..embeddings import EmbeddingBatch
from ..schema_embeddings import EmbeddingRequest
from ..usage import token_count
from .base import upstream_error_or

__all__ = ["OPENAI_EMBEDDINGS", "OpenAIEmbeddings"]


class OpenAIEmbeddings:
    """OpenAI's wire format (``POST {base}/embeddings``)."""

    max_batch: int = 2048
    """OpenAI's own limit on inputs per request."""

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        payload = request.to_payload()
        payload["model"] = model
        if len(inputs) != len(request.inputs):  # one slice of a split request
            payload["input"] = list(inputs)
        return payload

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise upstream_error_or(data, "a response without 'data'")
        # OpenAI answers in input order with an ``index`` on each item; a server that does not keep
        # the order still says which input each vector belongs to.
        ordered = sorted(items, key=lambda item: item["index"]) if _indexed(items) else items
        usage = data.get("usage")
        model = data.get("model")
        return EmbeddingBatch(
            vectors=[item["embedding"] for item in ordered],
            prompt_tokens=token_count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None,
            model=model if isinstance(model, str) and model else None,
        )


def _indexed(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in items)


OPENAI_EMBEDDINGS: Final = OpenAIEmbeddings()
