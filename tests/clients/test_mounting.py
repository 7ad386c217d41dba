"""Mounting: Starlette/FastAPI mounts, Litestar, bare ASGI middleware, trailing slashes, lifespans."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from asgiref.testing import ApplicationCommunicator

from rec_llm_gateway import Gateway, GatewayMiddleware

from ..support import HOST_KINDS, gateway_server, hello_app, serve

CHAT = {"model": "echo:m", "messages": [{"role": "user", "content": "mounted"}]}
ECHO = {"providers": {"echo": {}}}


@pytest.mark.parametrize("kind", HOST_KINDS)
@pytest.mark.parametrize("suffix", ["/v1/chat/completions", "/v1/chat/completions/", "/chat/completions"])
def test_paths_under_every_host(kind: str, suffix: str) -> None:
    with gateway_server(ECHO, kind) as (url, _):
        response = httpx.post(f"{url}{suffix}", json=CHAT)
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "mounted"
        assert httpx.get(f"{url}/v1/models/").json()["object"] == "list"


def test_nested_starlette_mounts_and_root_path() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    gateway = Gateway(ECHO)
    app = Starlette(routes=[Mount("/api", routes=[Mount("/llm", app=gateway)])])
    with serve(app) as url:
        assert httpx.post(f"{url}/api/llm/v1/chat/completions", json=CHAT).status_code == 200
        assert httpx.get(f"{url}/api/llm/health").json()["status"] == "ok"


async def test_gateway_as_the_top_level_app_with_a_root_path() -> None:
    # uvicorn --root-path style: root_path set, path NOT starting with it
    gateway = Gateway(ECHO)
    transport = httpx.ASGITransport(app=gateway, root_path="/behind-proxy")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/health")).status_code == 200


async def test_middleware_passes_everything_else_through_untouched() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        await hello_app(scope, receive, send)

    wrapped = GatewayMiddleware(app, gateway=Gateway(ECHO), path_prefix="/llm/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as client:
        assert (await client.get("/llmx/other")).text == "host app: /llmx/other"
        assert (await client.get("/other")).text == "host app: /other"
        assert (await client.get("/llm/health")).json()["status"] == "ok"
    assert [scope["path"] for scope in seen] == ["/llmx/other", "/other"]


async def test_middleware_lifespan_passes_through_and_opens_the_gateway() -> None:
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    gateway = Gateway(ECHO)
    communicator = ApplicationCommunicator(GatewayMiddleware(app, gateway=gateway), {"type": "lifespan"})
    await communicator.send_input({"type": "lifespan.startup"})
    assert (await communicator.receive_output())["type"] == "lifespan.startup.complete"
    assert gateway._runtimes, "the gateway opened its pools at startup"
    await communicator.send_input({"type": "lifespan.shutdown"})
    assert (await communicator.receive_output())["type"] == "lifespan.shutdown.complete"
    await communicator.wait()
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert not gateway._runtimes, "and closed them at shutdown"


async def test_gateway_handles_its_own_lifespan() -> None:
    gateway = Gateway(ECHO)
    communicator = ApplicationCommunicator(gateway, {"type": "lifespan"})
    await communicator.send_input({"type": "lifespan.startup"})
    assert (await communicator.receive_output())["type"] == "lifespan.startup.complete"
    await communicator.send_input({"type": "lifespan.shutdown"})
    assert (await communicator.receive_output())["type"] == "lifespan.shutdown.complete"


async def test_async_with_and_lazy_open() -> None:
    gateway = Gateway(ECHO)
    assert not gateway._runtimes
    async with gateway:
        assert gateway._runtimes
    assert not gateway._runtimes
    # without `async with`, the first request opens it
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://t") as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert gateway._runtimes
    await gateway.aclose()


async def test_websocket_handshakes_are_refused_and_other_scopes_ignored() -> None:
    gateway = Gateway(ECHO)
    # Returning without answering a handshake made servers reply with a bare 500: the gateway closes it.
    communicator = ApplicationCommunicator(gateway, {"type": "websocket", "path": "/v1/chat/completions"})
    await communicator.send_input({"type": "websocket.connect"})
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1008}
    await communicator.wait(timeout=5)
    other = ApplicationCommunicator(gateway, {"type": "something-else"})
    await other.wait(timeout=1)  # returns without sending anything


async def test_streaming_through_asgi_sends_chunks_with_more_body() -> None:
    """The ASGI message sequence of a stream: start, one body message per chunk, a final empty one."""
    gateway = Gateway({"providers": {"echo": {}}})
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    communicator = ApplicationCommunicator(gateway, scope)
    body = b'{"model": "echo:m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}'
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=5)
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    messages = []
    while True:
        message = await communicator.receive_output(timeout=5)
        messages.append(message)
        if not message.get("more_body"):
            break
    assert len(messages) >= 5  # role, three words, then the held final chunk with [DONE]
    assert all(message["more_body"] for message in messages[:-1])
    assert messages[-1]["body"].endswith(b"data: [DONE]\n\n")
    with contextlib.suppress(Exception):
        await communicator.wait(timeout=1)


async def test_graceful_shutdown_lets_requests_finish(upstream) -> None:
    from ..support import Reply

    gateway = Gateway({"providers": {"openai": {"base_url": f"{upstream.url}/v1", "models": ["m"]}}})
    upstream.reply(
        Reply(
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
            delay=0.5,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://t") as client:
        slow = asyncio.create_task(client.post("/v1/chat/completions", json={**CHAT, "model": "openai:m"}))
        await asyncio.sleep(0.2)  # the request is now waiting on the upstream
        closing = asyncio.create_task(gateway.aclose())
        await asyncio.sleep(0.05)
        refused = await client.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 503
        assert (await slow).json()["choices"][0]["message"]["content"] == "late"  # finished, not cut off
        await closing
    assert not gateway._runtimes
    assert gateway.usage.get_by_provider("openai")[0].calls == 1  # usage kept


async def test_shutdown_grace_is_bounded(upstream) -> None:
    from ..support import Reply

    gateway = Gateway(
        {
            "limits": {"shutdown_grace_seconds": 0.2},
            "providers": {"openai": {"base_url": f"{upstream.url}/v1"}},
        }
    )
    upstream.reply(Reply(hang=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://t") as client:
        stuck = asyncio.create_task(client.post("/v1/chat/completions", json={**CHAT, "model": "openai:m"}))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        await gateway.aclose()
        assert asyncio.get_running_loop().time() - started < 2
        with contextlib.suppress(BaseException):
            await stuck
