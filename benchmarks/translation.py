"""Translation cost per stream event, per provider (in-process microbenchmark).

For each provider type: the time to turn one upstream stream event into OpenAI chunks (the
provider's ``StreamTranslator.feed``), and the time to encode a chunk for the client
(``SSEEncoder.feed``), in microseconds, median of rounds. Also the shared SSE decoder's cost.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from rec_llm_gateway import Gateway
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.http import _iter_sse_data
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.streaming import SSEEncoder

_OPENAI_EVENT = json.dumps(
    {
        "id": "chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl",
        "object": "chat.completion.chunk",
        "created": 1782955817,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_d0469e1700",
        "choices": [{"index": 0, "delta": {"content": " capital"}, "logprobs": None, "finish_reason": None}],
        "usage": None,
        "obfuscation": "C63r",
    }
).encode()

# type -> (provider settings, a representative mid-stream event as the translator receives it)
SAMPLES: dict[str, tuple[dict[str, Any], Any]] = {
    "openai": ({"api_key": "k"}, _OPENAI_EVENT),
    "azure": (
        {"api_key": "k", "base_url": "https://r.openai.azure.com", "api_version": "2024-10-21"},
        _OPENAI_EVENT,
    ),
    "anthropic": (
        {"api_key": "k"},
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" capital"}}',
    ),
    "gemini": (
        {"api_key": "k"},
        json.dumps(
            {
                "candidates": [{"content": {"parts": [{"text": " capital"}], "role": "model"}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
                "modelVersion": "gemini-2.5-flash",
                "responseId": "abc",
            }
        ).encode(),
    ),
    "bedrock": (
        {"api_key": "k", "region": "us-east-1"},
        (
            {":message-type": "event", ":event-type": "contentBlockDelta"},
            b'{"contentBlockIndex":0,"delta":{"text":" capital"},"p":"abcdefghij"}',
        ),
    ),
}


def _rounds(operation: Callable[[], Any], events: int, rounds: int = 5) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(events):
            operation()
        timings.append((time.perf_counter() - started) / events)
    return statistics.median(timings) * 1e6


def _translator_for(type_name: str, settings: dict[str, Any]) -> Any:
    gateway = Gateway({"providers": {type_name: settings}})
    provider = gateway.providers[type_name]
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    call = UpstreamCall(request=request, model="m", http=httpx.AsyncClient(), request_id="bench", stream=True)
    return provider.stream_translator(call)  # type: ignore[attr-defined]


def _decode_cost(events: int) -> float:
    body = b"".join(b"data: " + _OPENAI_EVENT + b"\n\n" for _ in range(events))
    # Network reads of ~1 KiB, like a real stream.
    parts = [body[i : i + 1024] for i in range(0, len(body), 1024)]

    class Parts(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[override]
            for part in parts:
                yield part

    async def decode() -> float:
        started = time.perf_counter()
        count = 0
        async for _ in _iter_sse_data(httpx.Response(200, stream=Parts())):
            count += 1
        assert count == events
        return (time.perf_counter() - started) / events

    return statistics.median(asyncio.run(decode()) for _ in range(5)) * 1e6


def measure(events: int = 20000) -> dict[str, float]:
    """Microseconds per event: ``sse_decode``, ``<type>_translate`` and ``client_encode``."""
    from rec_llm_gateway.providers.registry import BUILTIN_TYPES

    results = {"sse_decode": round(_decode_cost(events), 3)}
    for type_name, (settings, event) in SAMPLES.items():
        if type_name not in BUILTIN_TYPES:
            continue
        try:
            translator = _translator_for(type_name, settings)
            translator.feed(event)  # the first event may set up state
        except Exception as exc:  # a provider's sample may not fit its translator: report, go on
            results[f"{type_name}_translate"] = float("nan")
            print(f"translation benchmark for {type_name} skipped: {type(exc).__name__}: {exc}")
            continue
        results[f"{type_name}_translate"] = round(_rounds(lambda t=translator, e=event: t.feed(e), events), 3)
    encoder = SSEEncoder(wants_usage=False)
    chunk = json.loads(_OPENAI_EVENT)
    results["client_encode"] = round(_rounds(lambda: encoder.feed(dict(chunk)), events), 3)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
