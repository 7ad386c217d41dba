"""The servers a benchmark runs, each in its own process with one uvicorn worker.

    python -m benchmarks.servers upstream --port 9001
    python -m benchmarks.servers bare     --port 9002 --upstream http://127.0.0.1:9001
    python -m benchmarks.servers gateway  --port 9003 --upstream http://127.0.0.1:9001

- ``upstream``: a fast fake OpenAI (chat, embeddings, Responses: JSON and SSE) and Anthropic (JSON
  and SSE) server; the stream shape comes from the model name (``bench-c20-i2``: 20 chunks 2 ms
  apart), and every streamed token carries its send time so clients can measure each chunk's delay.
- ``bare``: the floor for a Python proxy: raw ASGI + one shared ``httpx.AsyncClient``, no parsing.
- ``aiohttp``: the same pass-through on aiohttp's client (when installed).
- ``gateway``: rec-llm-gateway mounted at ``/llm`` in a FastAPI app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today?",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
).encode()


def _embedding(index: int) -> str:
    """A 1,536-float vector as OpenAI sends it by default to its SDK (base64 of float32s)."""
    import base64
    import struct

    return base64.b64encode(struct.pack("<1536f", *(((index + i) % 97) / 97 for i in range(1536)))).decode()


EMBEDDINGS = json.dumps(
    {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _embedding(index)} for index in range(4)
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 32, "total_tokens": 32},
    }
).encode()
"""The answer to four inputs: what a RAG app's batch of document chunks gets back (about 33 KB)."""


_SHAPE = re.compile(rb'"model"\s*:\s*"[^"]*?-c(\d+)-i(\d+(?:\.\d+)?)"')


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


_ERROR = re.compile(rb'"model"\s*:\s*"[^"]*?-error(\d{3})"')


def stream_shape(body: bytes) -> tuple[int, float]:
    """Chunk count and interval (seconds) from a model name like ``bench-c20-i2`` (20 chunks, 2 ms)."""
    match = _SHAPE.search(body)
    if match is None:
        return 20, 0.0
    return int(match.group(1)), float(match.group(2)) / 1000


def stamp() -> str:
    """The send time of a chunk, readable by the client on the same machine (monotonic, ns)."""
    return f"t{time.monotonic_ns()} "


def openai_frames(count: int) -> tuple[bytes, list[Callable[[], bytes]], bytes]:
    """(first frame, token frames built at send time, closing frames) of an OpenAI stream."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
    }

    def frame(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    first = frame(
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
            "usage": None,
        }
    )
    tokens = [
        lambda: frame(
            {
                **base,
                "choices": [{"index": 0, "delta": {"content": stamp()}, "finish_reason": None}],
                "usage": None,
            }
        )
    ] * count
    usage = {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count}
    closing = (
        frame({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None})
        + frame({**base, "choices": [], "usage": usage})
        + b"data: [DONE]\n\n"
    )
    return first, tokens, closing


def anthropic_frames(count: int) -> tuple[bytes, list[Callable[[], bytes]], bytes]:
    def frame(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"

    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    first = frame("message_start", {"type": "message_start", "message": message}) + frame(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    tokens = [
        lambda: frame(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": stamp()}},
        )
    ] * count
    closing = (
        frame("content_block_stop", {"type": "content_block_stop", "index": 0})
        + frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": count},
            },
        )
        + frame("message_stop", {"type": "message_stop"})
    )
    return first, tokens, closing


ANTHROPIC_MESSAGE = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9},
    }
).encode()


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A fast fake upstream: OpenAI ``/chat/completions`` and Anthropic ``/messages``, JSON or SSE."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    anthropic = scope["path"].endswith("/messages")
    responses = scope["path"].endswith("/responses")
    if scope["method"] == "GET":  # health checks: GET /models
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"object": "list", "data": []}'})
        return
    error = _ERROR.search(body)
    if error is not None:  # a model named like "bench-error500" answers with that status
        status = int(error.group(1))
        payload = json.dumps(
            {"error": {"message": f"fake upstream error {status}", "type": "server_error"}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return
    if b'"stream": true' not in body and b'"stream":true' not in body:
        if scope["path"].endswith("/embeddings"):
            payload = EMBEDDINGS
        elif responses:
            from .responses_upstream import RESPONSE as payload
        else:
            payload = ANTHROPIC_MESSAGE if anthropic else COMPLETION
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return
    count, interval = stream_shape(body)
    if responses:
        from .responses_upstream import responses_frames as frames
    else:
        frames = anthropic_frames if anthropic else openai_frames
    first, tokens, closing = frames(count)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    await send({"type": "http.response.body", "body": first, "more_body": True})
    for token in tokens:
        if interval:
            await asyncio.sleep(interval)
        await send({"type": "http.response.body", "body": token(), "more_body": True})
    await send({"type": "http.response.body", "body": closing})


def bare_proxy(upstream: str) -> Any:
    """Raw ASGI + one shared httpx.AsyncClient: forwards bytes both ways, parses nothing."""
    import httpx

    client: httpx.AsyncClient | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal client
        if scope["type"] != "http":
            return
        if client is None:
            client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200), timeout=60
            )
        body = await read_body(receive)
        path = scope["path"].removeprefix("/llm")
        request = client.build_request(
            "POST", upstream + path, content=body, headers={"content-type": "application/json"}
        )
        response = await client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(b"content-type", response.headers.get("content-type", "").encode())],
                }
            )
            async for part in response.aiter_raw():
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    return app


def aiohttp_proxy(upstream: str) -> Any:
    """The same pass-through on aiohttp's client: the fastest Python client, the floor."""
    import aiohttp

    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] != "http":
            return
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        body = await read_body(receive)
        path = scope["path"].removeprefix("/llm")
        async with session.post(
            upstream + path, data=body, headers={"content-type": "application/json"}
        ) as response:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(b"content-type", response.headers.get("content-type", "").encode())],
                }
            )
            async for part in response.content.iter_any():
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def gateway_app(upstream: str, variant: str = "plain", state: str = "") -> Any:
    """The gateway mounted at /llm in FastAPI, pointed at the fake upstream. With ``state`` (a
    ``state.url``), the provider gets a rate limit too high to bite, so every request takes it in
    the state store (the one round trip before the upstream call) and writes its usage there."""
    import contextlib

    from fastapi import FastAPI

    from rec_llm_gateway import Gateway
    from rec_llm_gateway.providers.registry import BUILTIN_TYPES

    providers: dict[str, Any] = {
        "openai": {  # a stand-in for OpenAI: priced like it (pricing stays in what is measured)
            "api_key": "sk-bench",
            "base_url": f"{upstream}/v1",
            "models": ["gpt-4o-mini", "text-embedding-3-small"],
            "prices_from": "openai",
        }
    }
    if "anthropic" in BUILTIN_TYPES:
        providers["anthropic"] = {"api_key": "sk-ant-bench", "base_url": upstream, "prices_from": "anthropic"}
    # the same upstream asked through chat completions only: /v1/responses is translated
    providers["compat"] = {
        "type": "openai",
        "api_key": "sk-bench",
        "base_url": f"{upstream}/v1",
        "responses_api": False,
        "prices_from": "openai",
    }
    config: dict[str, Any] = {"default_provider": "openai", "providers": providers}
    if state:
        providers["openai"]["rate_limits"] = {"requests_per_minute": 100_000_000}
        config["state"] = {"url": state}
    if variant == "httpx-transport":
        config["http"] = {"transport": "httpx"}
    kwargs: dict[str, Any] = {}
    if variant == "otel-sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        tracer_provider = TracerProvider()
        exporter = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        kwargs = {
            "tracer_provider": tracer_provider,
            "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
        }

        async def drain() -> None:  # keep the exporter from growing without bound
            while True:
                await asyncio.sleep(1)
                exporter.clear()

        kwargs["_drain"] = drain
    if variant in ("hooks", "otel-sdk"):
        from rec_llm_gateway import hookimpl

        class Noop:
            @hookimpl
            def pre_request(self, request: Any) -> None:
                return None

            @hookimpl
            def on_cost(self, event: Any) -> None:
                return None

            @hookimpl
            async def post_response(self, response: Any) -> None:
                return None

        kwargs["plugins"] = [Noop()]
    drain = kwargs.pop("_drain", None)
    gateway = Gateway(config, **kwargs)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(drain()) if drain else None
        async with gateway:
            yield
        if task:
            task.cancel()

    app = FastAPI(lifespan=lifespan)
    app.mount("/llm", gateway)
    return app


def gateway_from_env() -> Any:
    """``gateway_app`` in a worker process of ``--workers N``."""
    return gateway_app(os.environ["BENCH_UPSTREAM"], os.environ["BENCH_VARIANT"], os.environ["BENCH_STATE"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["upstream", "bare", "aiohttp", "gateway"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--variant", default="plain", help="plain | hooks | otel-sdk | httpx-transport")
    parser.add_argument("--state", default="", help="a state.url (the provider then has a rate limit)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    import uvicorn

    if args.kind == "upstream":
        app: Any = upstream_app
    elif args.kind == "bare":
        app = bare_proxy(args.upstream)
    elif args.kind == "aiohttp":
        app = aiohttp_proxy(args.upstream)
    elif args.workers > 1:  # worker processes import the app: pass the settings in the environment
        os.environ.update(BENCH_UPSTREAM=args.upstream, BENCH_VARIANT=args.variant, BENCH_STATE=args.state)
        uvicorn.run(
            "benchmarks.servers:gateway_from_env",
            factory=True,
            workers=args.workers,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=120,
        )
        return
    else:
        app = gateway_app(args.upstream, args.variant, args.state)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_keep_alive=120,
    )


if __name__ == "__main__":
    main()


LITELLM_CONFIG = """
model_list:
  - model_name: "*"
    litellm_params:
      model: "openai/*"
      api_base: "{upstream}/v1"
      api_key: "sk-bench"
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  disable_spend_logs: true
  disable_error_logs: true
"""
