"""``echo`` embeddings: deterministic unit vectors computed from the input, no network, no key.

A text's vector is the normalised sum of one pseudo-random vector per word (SHAKE-256 of the
lower-cased word, read as 16-bit numbers): the same text always gives the same vector, and texts
that share words point the same way, so a demo or a test can store, search and rank documents
without a model (a bag-of-words lookalike: it knows no synonyms). Token ids count as words. The
size is ``dimensions`` when the request sets it, else the catalog's size for the model name
(``text-embedding-3-small`` on echo gives 1,536 numbers like the real one), else 256. Tokens are
counted as echo counts them for chat: one per word (or per token id).
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from typing import Any, Final

from ..catalog.embeddings import lookup_embedding
from ..embeddings import EmbeddingBatch, EmbeddingResult, embedding_response
from ..schema_embeddings import EmbeddingRequest

__all__ = ["ECHO_DIMENSIONS", "echo_embeddings", "echo_vector"]

_WORD: Final = re.compile(r"\w+")
ECHO_DIMENSIONS: Final = 256


def echo_vector(item: str | list[int], dimensions: int) -> list[float]:
    """The vector for one input: a function of its words alone, of length one."""
    words = [word.encode() for word in _WORD.findall(item.lower())] if isinstance(item, str) else []
    if not isinstance(item, str):
        words = [array("I", [token]).tobytes() for token in item]
    if not words:  # only punctuation or spaces: the text itself is the one "word"
        words = [item.encode() if isinstance(item, str) else b""]
    total = [0.0] * dimensions
    for word in words:
        numbers = array("H", hashlib.shake_256(word).digest(2 * dimensions))
        total = [value + number - 32767.5 for value, number in zip(total, numbers, strict=True)]
    norm = math.sqrt(math.fsum(value * value for value in total)) or 1.0
    return [value / norm for value in total]


def echo_embeddings(request: EmbeddingRequest, model: str) -> EmbeddingResult:
    """The whole answer to ``request`` on echo's ``model``."""
    dimensions = request.dimensions
    if dimensions is None:
        info = lookup_embedding(model, "echo")
        dimensions = info.dimensions if info is not None else ECHO_DIMENSIONS
    inputs: list[Any] = list(request.inputs)
    tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in inputs)
    batch = EmbeddingBatch(vectors=[echo_vector(item, dimensions) for item in inputs], prompt_tokens=tokens)
    return embedding_response([batch], model=model, base64_output=request.wants_base64)
