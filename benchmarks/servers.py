"""The servers a benchmark runs, each in its own process with one uvicorn worker.

    python -m benchmarks.servers upstream --port 9001
    python -m benchmarks.servers bare     --port 9002 --upstream http://127.0.0.1:9001
    python -m benchmarks.servers gateway  --port 9003 --upstream http://127.0.0.1:9001

- ``upstream``: a fast fake OpenAI (JSON and SSE) and Anthropic (SSE) server.
- ``bare``: the floor for a Python proxy: raw ASGI + one shared ``httpx.AsyncClient``, no parsing.
- ``aiohttp``: the same pass-through on aiohttp's client (when installed).
- ``gateway``: rec-llm-gateway mounted at ``/llm`` in a FastAPI app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def openai_chunks(count: int) -> list[bytes]:
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
    }

    def frame(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    frames = [
        frame(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
                "usage": None,
            }
        )
    ]
    frames += [
        frame(
            {
                **base,
                "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
                "usage": None,
            }
        )
        for i in range(count)
    ]
    frames.append(
        frame({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None})
    )
    frames.append(
        frame(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count},
            }
        )
    )
    frames.append(b"data: [DONE]\n\n")
    return frames


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers chat completions instantly; streams ``chunks`` frames ``interval`` seconds apart.

    Query parameters (from the request URL): ``chunks`` (default 20) and ``interval`` (default 0).
    """
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    stream = b'"stream": true' in body or b'"stream":true' in body
    if not stream:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(COMPLETION)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": COMPLETION})
        return
    query = dict(
        part.split("=", 1) for part in scope.get("query_string", b"").decode().split("&") if "=" in part
    )
    interval = float(query.get("interval", os.environ.get("BENCH_CHUNK_INTERVAL", "0")))
    frames = openai_chunks(int(query.get("chunks", os.environ.get("BENCH_CHUNKS", "20"))))
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    for frame in frames:
        if interval:
            await asyncio.sleep(interval)
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


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
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
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
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
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


def gateway_app(upstream: str, variant: str = "plain") -> Any:
    """The gateway mounted at /llm in FastAPI, pointed at the fake upstream."""
    import contextlib

    from fastapi import FastAPI

    from rec_llm_gateway import Gateway

    config = {
        "default_provider": "openai",
        "providers": {
            "openai": {"api_key": "sk-bench", "base_url": f"{upstream}/v1", "models": ["gpt-4o-mini"]}
        },
    }
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["upstream", "bare", "aiohttp", "gateway"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--variant", default="plain", help="gateway: plain | hooks | otel-sdk")
    args = parser.parse_args()

    import uvicorn

    if args.kind == "upstream":
        app: Any = upstream_app
    elif args.kind == "bare":
        app = bare_proxy(args.upstream)
    elif args.kind == "aiohttp":
        app = aiohttp_proxy(args.upstream)
    else:
        app = gateway_app(args.upstream, args.variant)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="auto")


if __name__ == "__main__":
    main()
