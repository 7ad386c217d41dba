"""The gateway's own CPU per request and per stream chunk (in-process, no network).

CPU time (``time.process_time``), not wall time: on a shared machine another process's work does
not count against the gateway.

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
    """Answers at once, building its ``httpx.Response`` the way ``AiohttpTransport`` does (raw
    headers, the body as a stream the gateway reads), so the httpx work counted is the real path's.
    (``httpx.Response(content=...)`` would add a read through httpx's decoders that the real path
    never does: ~20% of the figure.)"""

    def __init__(self) -> None:
        first, tokens, closing = openai_frames(_CHUNKS)
        body = first + b"".join(token() for token in tokens) + closing
        self._frames = [part + b"\n\n" for part in body.split(b"\n\n") if part]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = request.content
        if request.url.path.endswith("/responses"):
            return _answer(request, b"application/json", [_RESPONSE])
        if b'"stream":true' in content:
            return _answer(request, b"text/event-stream", self._frames)
        return _answer(request, b"application/json", [COMPLETION])


def _answer(request: httpx.Request, content_type: bytes, parts: list[bytes]) -> httpx.Response:
    headers = [(b"content-type", content_type)]
    if content_type == b"application/json":
        headers.append((b"content-length", str(len(parts[0])).encode()))
    return httpx.Response(
        status_code=200,
        headers=headers,
        stream=_Frames(parts),
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )


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


def _gateway() -> Gateway:
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
    return gateway


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


_CHAT = "/v1/chat/completions"
_RESPONSES = "/v1/responses"
# figure -> (path, body, requests per round at size 1, stream chunks per request)
_FIGURES: dict[str, tuple[str, bytes, int, int]] = {
    "cpu_per_request_us": (
        _CHAT,
        _body(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=64),
        2000,
        0,
    ),
    "cpu_per_stream_chunk_us": (
        _CHAT,
        _body(model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hi"}]),
        20,
        _CHUNKS,
    ),
    # /v1/responses: passed through (native), translated through chat, and a translated stream
    # (every response is stored, as by default)
    "responses_native_cpu_per_request_us": (
        _RESPONSES,
        _body(model="gpt-4o-mini", input="Say hello", max_output_tokens=64),
        1000,
        0,
    ),
    "responses_translated_cpu_per_request_us": (
        _RESPONSES,
        _body(model="compat:gpt-4o-mini", input="Say hello"),
        1000,
        0,
    ),
    "responses_cpu_per_stream_chunk_us": (
        _RESPONSES,
        _body(model="compat:gpt-4o-mini", input="hi", stream=True),
        20,
        _CHUNKS,
    ),
}


async def _measure(rounds: int, names: list[str], size: float) -> dict[str, list[float]]:
    """CPU seconds per request (or per stream chunk) of each figure, one value per round; the
    figures take turns within each round."""
    gateway = _gateway()
    for name in names:  # warm up: price table, caches
        path, body, _, chunks = _FIGURES[name]
        for _ in range(10 if chunks else 300):
            await _drive(gateway, body, path)
    values: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            path, body, count, chunks = _FIGURES[name]
            count = max(1, int(count * size))
            started = time.process_time()
            for _ in range(count):
                sent = await _drive(gateway, body, path)
                assert sent > chunks
            values[name].append((time.process_time() - started) / (count * max(chunks, 1)))
    return values


def measure_rounds(rounds: int, responses: bool = True, size: float = 1.0) -> dict[str, list[float]]:
    """Each figure's value (us) per round; ``size`` scales the requests per round."""
    names = [name for name in _FIGURES if responses or not name.startswith("responses")]
    values = asyncio.run(_measure(rounds, names, size))
    return {name: [value * 1e6 for value in figures] for name, figures in values.items()}


def measure(rounds: int = 5, responses: bool = True) -> dict[str, float]:
    """Medians over ``rounds``; ``responses=False``: the chat route only (quicker)."""
    values = measure_rounds(rounds, responses)
    return {name: round(statistics.median(figures), 2) for name, figures in values.items()}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
