"""``echo`` embeddings: deterministic unit vectors computed from the input, no network, no key.

The same text always gives the same vector (SHAKE-256 of the text, read as 16-bit numbers and
scaled to unit length), different texts give unrelated ones, so tests and demos can store, search
and compare vectors without a model. The size is ``dimensions`` when the request sets it, else the
catalog's size for the model name (``text-embedding-3-small`` on echo gives 1,536 numbers like the
real one), else 256. Tokens are counted as echo counts them for chat: one per word (or per token id).
"""

from __future__ import annotations

import hashlib
import math
from array import array
from typing import Any, Final

from ..catalog.embeddings import lookup_embedding
from ..embeddings import EmbeddingBatch, EmbeddingResult, embedding_response
from ..errors import InvalidRequestError
from ..schema_embeddings import EmbeddingRequest

__all__ = ["ECHO_DIMENSIONS", "MAX_ECHO_DIMENSIONS", "echo_embeddings", "echo_vector"]

ECHO_DIMENSIONS: Final = 256
MAX_ECHO_DIMENSIONS: Final = 8192


def echo_vector(item: str | list[int], dimensions: int) -> list[float]:
    """The vector for one input: a function of the input alone, of length one."""
    data = item.encode() if isinstance(item, str) else array("I", item).tobytes()
    numbers = array("H", hashlib.shake_256(data).digest(2 * dimensions))
    centred = [number - 32767.5 for number in numbers]
    norm = math.sqrt(sum(value * value for value in centred))
    return [value / norm for value in centred]


def echo_embeddings(request: EmbeddingRequest, model: str) -> EmbeddingResult:
    """The whole answer to ``request`` on echo's ``model``."""
    dimensions = request.dimensions
    if dimensions is None:
        info = lookup_embedding(model, "echo")
        dimensions = info.dimensions if info is not None else ECHO_DIMENSIONS
    elif dimensions > MAX_ECHO_DIMENSIONS:
        raise InvalidRequestError(
            f"Invalid value for 'dimensions': echo gives at most {MAX_ECHO_DIMENSIONS} dimensions.",
            param="dimensions",
            code="unsupported_dimensions",
        )
    inputs: list[Any] = list(request.inputs)
    tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in inputs)
    batch = EmbeddingBatch(vectors=[echo_vector(item, dimensions) for item in inputs], prompt_tokens=tokens)
    return embedding_response([batch], model=model, base64_output=request.wants_base64)
