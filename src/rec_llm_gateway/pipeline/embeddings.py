"""``POST /v1/embeddings``: what the embeddings operation adds to the shared pipeline.

Never a stream. Each provider translates through ``Provider.embed`` (``providers/*_embeddings.py``):
OpenAI-compatible upstreams get the request passed through, native ones their own wire format,
split into as many upstream calls as the provider allows per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from ..schema_embeddings import EmbeddingRequest, EmbeddingsResponse
from .operation import Operation

if TYPE_CHECKING:
    from ..config import LimitsConfig
    from ..providers.base import Provider, UpstreamCall
    from .operation import Answer

__all__ = ["EMBEDDINGS", "EmbeddingsOperation"]


class EmbeddingsOperation(Operation):
    """OpenAI embeddings: JSON in, JSON out (floats or base64)."""

    name: ClassVar[str] = "embeddings"
    request_model = EmbeddingRequest
    response_model = EmbeddingsResponse
    response_description: ClassVar[str] = "An embeddings list (floats, or base64 when asked)."

    def parse(self, body: bytes, limits: LimitsConfig) -> EmbeddingRequest:
        return EmbeddingRequest.from_json(body, {"max_inputs": limits.max_embedding_inputs})

    def streams(self, request: Any) -> bool:
        return False

    async def complete(self, provider: Provider, call: UpstreamCall) -> Answer:
        return await provider.embed(call)

    def open_stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError("embeddings never stream")


EMBEDDINGS = EmbeddingsOperation()
