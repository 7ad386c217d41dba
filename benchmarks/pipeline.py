"""The gateway's own CPU per request and per stream chunk (in-process, no network).

The ASGI app is driven directly against an upstream transport that answers instantly, so what is
timed is the gateway alone: validation, routing, hooks check, telemetry (no SDK), translation,
encoding, usage and cost. End-to-end figures (``python -m benchmarks``) add the server, the network
and the HTTP client on top.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from rec_llm_gateway import Gateway

from .servers import COMPLETION, openai_frames

_CHUNKS = 200
_RESPONSE = json.dumps(
    {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "gpt-4o-mini",
        "output": [
            {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hello! How can I help?", "annotations": []}],
            }
        ],
        "usage": {"input_tokens": 9, "output_tokens": 7, "total_tokens": 16},
    }
).encode()
_SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"gateway"), (b"content-type", b"application/json")],
}


class _Frames(httpx.AsyncByteStream):
    """An SSE body delivered one frame per network read, like a real stream."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            yield frame


class _Instant(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        first, tokens, closing = openai_frames(_CHUNKS)
        body = first + b"".join(token() for token in tokens) + closing
        self._frames = [part + b"\n\n" for part in body.split(b"\n\n") if part]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.url.path.endswith("/responses"):
            return httpx.Response(200, headers=[(b"content-type", b"application/json")], content=_RESPONSE)
        if b'"stream":true' in request.content:
            return httpx.Response(
                200, headers=[(b"content-type", b"text/event-stream")], stream=_Frames(self._frames)
            )
        return httpx.Response(200, headers=[(b"content-type", b"application/json")], content=COMPLETION)


async def _drive(gateway: Gateway, body: bytes, path: str = "/v1/chat/completions") -> int:
    sent: list[dict[str, Any]] = []
    finished = asyncio.Event()
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await gateway({**_SCOPE, "path": path}, receive, send)
    finished.set()
    return len(sent)


async def _measure(rounds: int) -> dict[str, float]:
    gateway = Gateway(
        {
            "default_provider": "openai",
            "providers": {
                # a stand-in for OpenAI: priced like it, so pricing stays in what is measured
                "openai": {"api_key": "k", "base_url": "http://up/v1", "prices_from": "openai"},
                # the same upstream asked through chat completions: /v1/responses is translated
                "compat": {
                    "type": "openai",
                    "api_key": "k",
                    "base_url": "http://up/v1",
                    "responses_api": False,
                },
            },
        }
    )
    gateway.runtime().transport = _Instant()
    plain = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 64}
    ).encode()
    stream = json.dumps(
        {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    for _ in range(300):  # warm up: price table, caches
        await _drive(gateway, plain)
    await _drive(gateway, stream)
    per_request, per_chunk = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(2000):
            await _drive(gateway, plain)
        per_request.append((time.perf_counter() - started) / 2000)
        started = time.perf_counter()
        for _ in range(20):
            assert await _drive(gateway, stream) > _CHUNKS
        per_chunk.append((time.perf_counter() - started) / (20 * _CHUNKS))
    return {
        "cpu_per_request_us": round(statistics.median(per_request) * 1e6, 1),
        "cpu_per_stream_chunk_us": round(statistics.median(per_chunk) * 1e6, 2),
        **await _measure_responses(gateway, rounds),
    }


async def _measure_responses(gateway: Gateway, rounds: int) -> dict[str, float]:
    """``/v1/responses``: passed through (native), translated through chat, and a translated stream
    (every response is stored, as by default)."""
    path = "/v1/responses"
    native = json.dumps({"model": "gpt-4o-mini", "input": "Say hello", "max_output_tokens": 64}).encode()
    translated = json.dumps({"model": "compat:gpt-4o-mini", "input": "Say hello"}).encode()
    stream = json.dumps({"model": "compat:gpt-4o-mini", "input": "hi", "stream": True}).encode()
    for body in (native, translated, stream):
        for _ in range(100):
            await _drive(gateway, body, path)
    figures: dict[str, list[float]] = {"native": [], "translated": [], "chunk": []}
    for _ in range(rounds):
        for name, body in (("native", native), ("translated", translated)):
            started = time.perf_counter()
            for _ in range(1000):
                await _drive(gateway, body, path)
            figures[name].append((time.perf_counter() - started) / 1000)
        started = time.perf_counter()
        for _ in range(20):
            assert await _drive(gateway, stream, path) > _CHUNKS
        figures["chunk"].append((time.perf_counter() - started) / (20 * _CHUNKS))
    return {
        "responses_native_cpu_per_request_us": round(statistics.median(figures["native"]) * 1e6, 1),
        "responses_translated_cpu_per_request_us": round(statistics.median(figures["translated"]) * 1e6, 1),
        "responses_cpu_per_stream_chunk_us": round(statistics.median(figures["chunk"]) * 1e6, 2),
    }


def measure(rounds: int = 5) -> dict[str, float]:
    return asyncio.run(_measure(rounds))


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
