"""Embeddings on AWS Bedrock through ``InvokeModel`` (``POST {base}/model/{modelId}/invoke``).

Each model family has its own body; the family is read from the model id:

- Amazon Titan Text Embeddings (``amazon.titan-embed-text-v2:0``, ``-v1``): one text per call,
  ``{"inputText", "dimensions", "normalize"}`` -> ``{"embedding", "inputTextTokenCount"}``. v2 takes
  ``dimensions`` 256, 512 or 1024; ``normalize`` (an extra field) defaults to true, as on Bedrock.
- Cohere Embed (``cohere.embed-english-v3``, ``-multilingual-v3``, ``cohere.embed-v4:0``): up to 96
  texts per call, ``{"texts", "input_type", "embedding_types": ["float"]}`` ->
  ``{"embeddings": {"float": [...]}}``; v4 takes ``output_dimension``. ``input_type`` (an extra
  field: ``search_document``, ``search_query``, ``classification``, ``clustering``) defaults to
  ``search_document``; ``truncate`` passes through when given. Cohere's count of input tokens
  comes in the ``X-Amzn-Bedrock-Input-Token-Count`` header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...embeddings import EmbeddingBatch
from ...errors import InvalidRequestError
from ...schema_embeddings import EmbeddingRequest
from ...usage import token_count
from ..base import upstream_error_or

__all__ = ["CohereEmbeddings", "TitanEmbeddings", "bedrock_embeddings"]

_INPUT_COUNT_HEADER: Final = "x-amzn-bedrock-input-token-count"
_INPUT_TYPES: Final = frozenset({"search_document", "search_query", "classification", "clustering"})


class TitanEmbeddings:
    """Amazon Titan Text Embeddings: one text per call."""

    max_batch: int = 1

    def __init__(self, *, v2: bool) -> None:
        self.v2 = v2

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"inputText": inputs[0]}
        if self.v2:
            if request.dimensions is not None:
                body["dimensions"] = request.dimensions
            normalize = (request.model_extra or {}).get("normalize")
            if normalize is not None:
                if not isinstance(normalize, bool):
                    raise InvalidRequestError(
                        "Invalid value for 'normalize': true or false.", param="normalize"
                    )
                body["normalize"] = normalize
        return body

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        if not isinstance(data, dict) or not isinstance(data.get("embedding"), list):
            raise upstream_error_or(data, "a response without 'embedding'")
        tokens = token_count(data.get("inputTextTokenCount")) or token_count(_header_count(headers))
        return EmbeddingBatch(vectors=[data["embedding"]], prompt_tokens=tokens or None)


class CohereEmbeddings:
    """Cohere Embed on Bedrock: up to 96 texts per call."""

    max_batch: int = 96

    def __init__(self, *, sized: bool) -> None:
        self.sized = sized
        """Whether the model takes ``output_dimension`` (Embed v4)."""

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        extra = request.model_extra or {}
        input_type = extra.get("input_type", "search_document")
        if input_type not in _INPUT_TYPES:
            raise InvalidRequestError(
                f"Invalid value for 'input_type': one of {', '.join(sorted(_INPUT_TYPES))}.",
                param="input_type",
            )
        body: dict[str, Any] = {"texts": list(inputs), "input_type": input_type, "embedding_types": ["float"]}
        if "truncate" in extra:
            body["truncate"] = extra["truncate"]
        if self.sized and request.dimensions is not None:
            body["output_dimension"] = request.dimensions
        return body

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        embeddings = data.get("embeddings") if isinstance(data, dict) else None
        # ``{"float": [...]}`` when embedding_types was sent (always, here); a bare list otherwise.
        if isinstance(embeddings, dict):
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list):
            raise upstream_error_or(data, "a response without float embeddings")
        return EmbeddingBatch(vectors=embeddings, prompt_tokens=token_count(_header_count(headers)) or None)


def bedrock_embeddings(model: str) -> TitanEmbeddings | CohereEmbeddings:
    """The dialect for a Bedrock model id (geography prefixes and ARNs included)."""
    name = model.rsplit("/", 1)[-1]
    if "titan-embed-text" in name or "titan-embed-g1-text" in name:
        return TitanEmbeddings(v2="-v2" in name)
    if "cohere.embed" in name:
        return CohereEmbeddings(sized="embed-v4" in name)
    raise InvalidRequestError(
        f"'{model}' is not an embedding model the gateway can call on Bedrock "
        "(Amazon Titan Text Embeddings and Cohere Embed are).",
        param="model",
        code="unsupported_model",
    )


def _header_count(headers: Mapping[str, str]) -> int | None:
    value = headers.get(_INPUT_COUNT_HEADER)
    return int(value) if value is not None and value.isdigit() else None
