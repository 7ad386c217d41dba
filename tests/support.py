"""Test support: real servers on loopback, a scriptable fake upstream, and host apps.

- ``serve(app)`` runs any ASGI app under uvicorn in a thread on 127.0.0.1 (random port).
- ``FakeUpstream`` is an ASGI app that records every request and answers from a script of
  ``Reply`` objects: JSON, SSE frames with delays, hangs, cut-off bodies, arbitrary statuses.
- ``host_app(kind, gateway)`` mounts a gateway at ``/llm`` in a bare ASGI app, FastAPI or Litestar.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from rec_llm_gateway import Gateway, GatewayMiddleware

HOST_KINDS = ("bare", "fastapi", "litestar")


# -- servers ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(app: Any, *, lifespan: str = "auto") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread; yields its base URL."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only for sockets that say
    # so; without it every small response waits ~40 ms on Nagle and the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# -- the fake upstream ------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted upstream answer."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    sse: list[bytes | str | dict[str, Any]] | None = None
    """SSE frames: dicts are sent as ``data: <json>``; str/bytes are sent verbatim."""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0
    """Seconds before the response starts."""
    chunk_delay: float = 0.0
    """Seconds between SSE frames."""
    hang: bool = False
    """Never answer (until the client gives up)."""
    cut_after: int | None = None
    """Send this many SSE frames (or body bytes), then break the connection."""
    gate: threading.Event | None = None
    """Wait for this event before sending the last SSE frame."""


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeUpstream:
    """A scriptable upstream. ``reply(...)`` queues answers; when the queue is empty ``default`` answers."""

    def __init__(self, default: Callable[[Recorded], Reply] | None = None) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.default = default or openai_echo
        self.closed_early = 0
        self.finished_streams = 0
        self.url = ""

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()
        self.closed_early = 0
        self.finished_streams = 0

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (message := await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = Recorded(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode(),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        self.requests.append(request)
        reply = self.replies.popleft() if self.replies else self.default(request)
        disconnected = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            await self._answer(reply, send, disconnected)
        finally:
            watcher.cancel()

    async def _answer(self, reply: Reply, send: Any, disconnected: asyncio.Event) -> None:
        if reply.delay or reply.hang:
            try:
                await asyncio.wait_for(disconnected.wait(), 3600 if reply.hang else reply.delay)
            except TimeoutError:
                pass
            else:  # the client (the gateway) hung up while we were "thinking"
                self.closed_early += 1
                return
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        if reply.sse is not None:
            content_type = reply.content_type or "text/event-stream"
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": [(b"content-type", content_type.encode()), *headers],
                }
            )
            try:
                for position, frame in enumerate(reply.sse):
                    if reply.cut_after is not None and position >= reply.cut_after:
                        raise ConnectionAbortedError("fake upstream cuts the stream")
                    if reply.gate is not None and position == len(reply.sse) - 1:
                        while not reply.gate.is_set():
                            await asyncio.sleep(0.005)
                    if position and reply.chunk_delay:
                        await asyncio.sleep(reply.chunk_delay)
                    if disconnected.is_set():  # the client (the gateway) hung up
                        self.closed_early += 1
                        return
                    await send({"type": "http.response.body", "body": _frame(frame), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                self.finished_streams += 1
            except (asyncio.CancelledError, OSError):
                self.closed_early += 1
                raise
            return
        if reply.body is not None:
            body = reply.body
            content_type = reply.content_type or "application/octet-stream"
        else:
            body = json.dumps(reply.json if reply.json is not None else {}).encode()
            content_type = reply.content_type or "application/json"
        if reply.cut_after is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": [
                        (b"content-type", content_type.encode()),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body[: reply.cut_after], "more_body": True})
            raise ConnectionAbortedError("fake upstream cuts the body")
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(b"content-type", content_type.encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serve_fake(default: Callable[[Recorded], Reply] | None = None) -> Iterator[FakeUpstream]:
    """A ``FakeUpstream`` served on loopback, its ``url`` set (for a module- or session-scoped fixture)."""
    fake = FakeUpstream(default=default)
    with serve(fake) as url:
        fake.url = url
        yield fake


def fresh(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    """For a per-test fixture over a shared fake: each test starts with it reset and leaves it reset."""
    fake.reset()
    yield fake
    fake.reset()


# A function tool the provider tests send, in OpenAI's shape.
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def assert_streamed_text(chunks: list[Any], text: str) -> None:
    """An SDK stream's chunks: ``text`` in order, the role on the first, exactly one final ``stop``."""
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1


def _frame(frame: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(frame, dict):
        return b"data: " + json.dumps(frame).encode() + b"\n\n"
    return frame.encode() if isinstance(frame, str) else frame


# -- OpenAI-shaped answers ----------------------------------------------------------------------------


def completion(
    text: str = "Hello!",
    *,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    finish_reason: str = "stop",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        **extra,
    }


def chunks(
    words: list[str], *, model: str = "gpt-4o-mini", usage: bool = True, prompt_tokens: int = 10
) -> list[bytes | str | dict[str, Any]]:
    """An OpenAI SSE stream of ``words`` (with a usage chunk when asked), ending in ``[DONE]``."""
    base = {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
    }
    frames: list[bytes | str | dict[str, Any]] = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    ]
    frames += [
        {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in words
    ]
    frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        frames.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(words),
                    "total_tokens": prompt_tokens + len(words),
                },
            }
        )
    frames.append("data: [DONE]\n\n")
    return frames


def openai_echo(request: Recorded) -> Reply:
    """Default fake upstream behaviour: answer like OpenAI, echoing the last user message."""
    if request.path.endswith("/models"):
        return Reply(json={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})
    body = request.json
    text = str(body["messages"][-1].get("content"))
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Reply(sse=chunks(text.split(" "), model=body["model"], usage=include_usage))
    return Reply(json=completion(text, model=body["model"]))


# -- host apps ----------------------------------------------------------------------------------------


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare host's own app: answers every other path, and completes its lifespan."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"host app: " + scope["path"].encode()})


def host_app(kind: str, gateway: Gateway) -> Any:
    """An application of ``kind`` with its own ``/hello`` route and the gateway at ``/llm``."""
    if kind == "bare":
        return GatewayMiddleware(hello_app, gateway=gateway, path_prefix="/llm")
    if kind == "fastapi":
        from fastapi import FastAPI

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            async with gateway:
                yield

        app = FastAPI(lifespan=lifespan)

        @app.get("/hello")
        async def hello() -> dict[str, str]:
            return {"hello": "fastapi"}

        app.mount("/llm", gateway)
        return app
    if kind == "litestar":
        from litestar import Litestar, get

        from rec_llm_gateway.integrations.litestar import GatewayPlugin

        @get("/hello")
        async def hello_litestar() -> dict[str, str]:
            return {"hello": "litestar"}

        # logging_config=None: Litestar's default puts a queue handler on the root logger at INFO for
        # the rest of the session, and the records it holds count against the memory bounds of later
        # tests (test_disconnects' thousand disconnects, once the suite ran Litestar hosts first).
        return Litestar(
            route_handlers=[hello_litestar],
            plugins=[GatewayPlugin(gateway, path="/llm")],
            logging_config=None,
        )
    raise ValueError(kind)


@contextlib.contextmanager
def gateway_server(
    config: dict[str, Any] | Gateway, kind: str = "fastapi", **kwargs: Any
) -> Iterator[tuple[str, Gateway]]:
    """Serve a gateway mounted at ``/llm`` in a ``kind`` host; yields (url, gateway)."""
    gateway = config if isinstance(config, Gateway) else Gateway(config, **kwargs)
    with serve(host_app(kind, gateway)) as url:
        yield f"{url}/llm", gateway


TRAFFIC_BESIDE_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "traffic"
"""Where the recorded traffic lives by default: ``../shared/reference/traffic`` beside the checkout."""


def traffic_dir() -> Path | None:
    """The recorded provider traffic: ``REC_LLM_TRAFFIC_DIR`` when set (an empty value turns the
    replays off), else ``../shared/reference/traffic`` beside the checkout when it is there."""
    value = os.environ.get("REC_LLM_TRAFFIC_DIR")
    path = TRAFFIC_BESIDE_CHECKOUT if value is None else Path(value) if value else None
    return path if path is not None and path.is_dir() else None


# -- case counts for the test summary --------------------------------------------------------------

CASE_COUNTS: dict[str, int] = {}


def count_cases(suite: str, cases: int = 1) -> None:
    """Add ``cases`` to ``suite``'s count; the totals are printed at the end of the test run."""
    CASE_COUNTS[suite] = CASE_COUNTS.get(suite, 0) + cases


NOTES: list[str] = []


def note(line: str) -> None:
    """A line for the test summary, under the case counts: what a generated suite measured."""
    NOTES.append(line)
