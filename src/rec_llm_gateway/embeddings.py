"""What every provider's embeddings translation shares: batches, the OpenAI response, base64.

A provider's translation is an ``EmbeddingDialect``: how many inputs one upstream call may carry,
the payload for one batch, and how to read one batch's answer. ``embed_in_batches`` splits the
inputs, runs the calls (a few at a time) and puts the vectors back in input order;
``embedding_response`` builds OpenAI's ``{"object": "list", "data": [...]}`` body from them,
encoding vectors as base64 when the client asked (the ``openai`` SDK asks by default).
"""

from __future__ import annotations

import asyncio
import base64
import sys
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from .catalog.embeddings import lookup_embedding
from .errors import BadGatewayError, InvalidRequestError
from .routing.tokens import CHARS_PER_TOKEN
from .schema_embeddings import EmbeddingRequest
from .usage import TokenUsage

__all__ = [
    "EmbeddingBatch",
    "EmbeddingDialect",
    "EmbeddingResult",
    "check_dimensions",
    "embed_in_batches",
    "embedding_response",
    "estimate_tokens",
    "text_inputs",
    "to_base64",
]

CONCURRENT_BATCHES: Final = 4
"""Upstream calls one request runs at a time when its inputs need several (Titan takes one text per
call): enough to hide latency, few enough not to trip the provider's own rate limit at once."""

_Item = TypeVar("_Item")


@dataclass(slots=True)
class EmbeddingBatch:
    """The answer to one upstream call: a vector per input, in input order."""

    vectors: list[Any]
    """Lists of floats, or base64 strings when an OpenAI-compatible upstream was asked for them."""
    prompt_tokens: int | None = None
    """Input tokens as the upstream counted them (``None``: it did not say)."""
    model: str | None = None


@dataclass(slots=True)
class EmbeddingResult:
    """A complete answer: OpenAI's embeddings body and its usage."""

    response: dict[str, Any]
    usage: TokenUsage | None


class EmbeddingDialect(Protocol):
    """One provider's embeddings wire format (pure: no I/O)."""

    max_batch: int
    """Inputs one upstream call may carry."""

    def payload(self, request: EmbeddingRequest, model: str, inputs: Sequence[Any]) -> dict[str, Any]:
        """The upstream body for ``inputs`` (a slice of ``request.inputs``)."""
        ...

    def parse(self, data: Any, count: int, headers: Mapping[str, str]) -> EmbeddingBatch:
        """Read the upstream's answer (parsed JSON, and its headers) for a batch of ``count`` inputs."""
        ...


def split(items: Sequence[_Item], size: int) -> list[Sequence[_Item]]:
    """``items`` in consecutive slices of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), max(1, size))]


async def embed_in_batches(
    inputs: Sequence[Any], max_batch: int, call: Callable[[Sequence[Any]], Awaitable[EmbeddingBatch]]
) -> list[EmbeddingBatch]:
    """``call`` once per batch of at most ``max_batch`` inputs, at most ``CONCURRENT_BATCHES`` at a
    time; the answers in input order. The first failure cancels the other calls and is raised."""
    parts = split(inputs, max_batch)
    if len(parts) == 1:
        return [await _checked(call, parts[0])]
    gate = asyncio.Semaphore(CONCURRENT_BATCHES)

    async def one(part: Sequence[Any]) -> EmbeddingBatch:
        async with gate:
            return await _checked(call, part)

    # gather rather than a TaskGroup: the client gets the first failure itself, not an
    # ExceptionGroup around it.
    tasks = [asyncio.ensure_future(one(part)) for part in parts]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _checked(
    call: Callable[[Sequence[Any]], Awaitable[EmbeddingBatch]], part: Sequence[Any]
) -> EmbeddingBatch:
    batch = await call(part)
    if len(batch.vectors) != len(part):
        # Putting vectors back in order relies on one per input: anything else would pair texts
        # with the wrong vectors, silently.
        raise BadGatewayError(
            f"the upstream returned {len(batch.vectors)} embeddings for {len(part)} inputs",
            code="upstream_bad_response",
        )
    return batch


def embedding_response(
    batches: Sequence[EmbeddingBatch], *, model: str, base64_output: bool, estimate: int | None = None
) -> EmbeddingResult:
    """OpenAI's embeddings body from the batches, in order. ``estimate`` stands in for the token count
    when an upstream reported none (Gemini's API counts no tokens)."""
    data: list[dict[str, Any]] = []
    for batch in batches:
        for vector in batch.vectors:
            if base64_output and not isinstance(vector, str):
                vector = to_base64(vector)
            elif not base64_output and isinstance(vector, str):
                vector = from_base64(vector)
            data.append({"object": "embedding", "index": len(data), "embedding": vector})
    counted = [batch.prompt_tokens for batch in batches]
    tokens = sum(count or 0 for count in counted) if any(c is not None for c in counted) else estimate
    usage = None if tokens is None else TokenUsage(prompt_tokens=tokens, total_tokens=tokens)
    answered = next((batch.model for batch in batches if batch.model), None) or model
    response = {
        "object": "list",
        "data": data,
        "model": answered,
        "usage": {"prompt_tokens": tokens or 0, "total_tokens": tokens or 0},
    }
    return EmbeddingResult(response=response, usage=usage)


def to_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI sends it with ``encoding_format: base64``: little-endian float32s."""
    packed = array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover - every platform the gateway runs on is little
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def from_base64(encoded: str) -> list[float]:
    """The inverse of ``to_base64`` (an upstream answered base64 to a client that wants floats)."""
    try:
        packed = array("f", base64.b64decode(encoded, validate=True))
    except ValueError:
        raise BadGatewayError("the upstream returned an embedding that is not valid base64") from None
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tolist()


def text_inputs(request: EmbeddingRequest, provider: str) -> list[str]:
    """The inputs as text, for providers that take no token ids (a 400 naming ``input`` otherwise)."""
    if request.is_tokens:
        raise InvalidRequestError(
            f"Provider '{provider}' embeds text only: send 'input' as a string or a list of strings, "
            "not token ids.",
            param="input",
            code="unsupported_input",
        )
    return request.inputs  # type: ignore[return-value]


def check_dimensions(request: EmbeddingRequest, model: str, provider_type: str) -> None:
    """A 400 naming ``dimensions`` when the catalog knows the model does not give that size. An
    uncatalogued model is left to its upstream to judge."""
    if request.dimensions is None:
        return
    info = lookup_embedding(model, provider_type)
    problem = info.dimensions_problem(request.dimensions) if info is not None else None
    if problem:
        raise InvalidRequestError(
            f"Invalid value for 'dimensions': {request.dimensions} is not supported; {problem}.",
            param="dimensions",
            code="unsupported_dimensions",
        )


def estimate_tokens(texts: Sequence[str]) -> int:
    """Input tokens of ``texts`` by the gateway's usual rule of thumb (``routing.tokens``)."""
    return sum(-(-len(text) // CHARS_PER_TOKEN) for text in texts)
