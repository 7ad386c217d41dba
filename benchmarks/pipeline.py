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
        if b'"stream":true' in request.content:
            return httpx.Response(
                200, headers=[(b"content-type", b"text/event-stream")], stream=_Frames(self._frames)
            )
        return httpx.Response(200, headers=[(b"content-type", b"application/json")], content=COMPLETION)


async def _drive(gateway: Gateway, body: bytes) -> int:
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

    await gateway(dict(_SCOPE), receive, send)
    finished.set()
    return len(sent)


async def _measure(rounds: int) -> dict[str, float]:
    gateway = Gateway(
        {"default_provider": "openai", "providers": {"openai": {"api_key": "k", "base_url": "http://up/v1"}}}
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
    }


def measure(rounds: int = 5) -> dict[str, float]:
    return asyncio.run(_measure(rounds))


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
