"""Streams are streamed: forwarded as they arrive, usage handled, errors and disconnects handled."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from rec_llm_gateway import hookimpl
from rec_llm_gateway.streaming import StreamAssembler

from ..support import Reply, chunks, gateway_server

CHAT = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def events(raw: str) -> list[str]:
    """The data of each SSE event in a raw body."""
    return [block.removeprefix("data: ") for block in raw.split("\n\n") if block.strip()]


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def server(openai_config):
    with gateway_server(openai_config) as (url, gateway):
        yield url, gateway


def test_first_chunk_reaches_the_client_before_the_upstream_finishes(server, upstream) -> None:
    url, _ = server
    gate = threading.Event()  # the upstream holds its last frame until we open this
    upstream.reply(Reply(sse=chunks(["early", "late"]), gate=gate))
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=CHAT, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in response.headers
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert upstream.finished_streams == 0, "the upstream has not finished yet"
        assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
        gate.set()
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    assert upstream.finished_streams == 1


def test_stream_wire_format_and_usage_stripping(server, upstream) -> None:
    url, _ = server
    raw = httpx.post(f"{url}/v1/chat/completions", json=CHAT).text
    data = events(raw)
    assert data[-1] == "[DONE]"
    parsed = [json.loads(item) for item in data[:-1]]
    assert all(chunk["choices"] for chunk in parsed), "no usage chunk without include_usage"
    assert all("usage" not in chunk for chunk in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"
    extension = parsed[-1]["x_rec_llm"]
    assert extension["cost_usd"] > 0  # priced from the usage the gateway requested upstream
    assert sum("x_rec_llm" in chunk for chunk in parsed) == 1


def test_stream_with_include_usage_keeps_the_usage_chunk_last(server, upstream) -> None:
    url, _ = server
    body = {**CHAT, "stream_options": {"include_usage": True}}
    parsed = [
        json.loads(item) for item in events(httpx.post(f"{url}/v1/chat/completions", json=body).text)[:-1]
    ]
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"]["total_tokens"] == 11
    assert "x_rec_llm" in parsed[-1]
    assert upstream.last.json["stream_options"] == {"include_usage": True}


def test_client_stream_options_are_merged_not_replaced(server, upstream) -> None:
    url, _ = server
    body = {**CHAT, "stream_options": {"include_obfuscation": False}}
    httpx.post(f"{url}/v1/chat/completions", json=body)
    assert upstream.last.json["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_stream_usage_can_be_switched_off_per_provider(upstream) -> None:
    config = {
        "providers": {"old": {"type": "openai", "base_url": f"{upstream.url}/v1", "stream_usage": False}}
    }
    with gateway_server(config) as (url, _):
        parsed = events(httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "old:m"}).text)
    assert "stream_options" not in upstream.last.json
    assert json.loads(parsed[-2])["x_rec_llm"]["cost_usd"] is None  # nothing to price it by


def test_upstream_failure_after_first_byte_ends_with_an_sse_error(server, upstream) -> None:
    url, gateway = server
    upstream.reply(Reply(sse=chunks(["a", "b", "c"]), cut_after=2))
    raw = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=10).text
    data = events(raw)
    assert data[-1] != "[DONE]"
    final = json.loads(data[-1])
    assert set(final) == {"error"}
    assert set(final["error"]) == {"message", "type", "param", "code"}
    assert json.loads(data[0])["choices"][0]["delta"]["role"] == "assistant"
    # usage is recorded just after the error event goes out
    assert wait_for(lambda: bool(gateway.usage.get_all()) and gateway.usage.get_all()[0].errors == 1)


def test_upstream_error_event_mid_stream(server, upstream) -> None:
    url, _ = server
    frames = chunks(["a"])[:2] + [
        {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}
    ]
    upstream.reply(Reply(sse=frames))
    data = events(httpx.post(f"{url}/v1/chat/completions", json=CHAT).text)
    assert json.loads(data[-1])["error"]["message"] == "overloaded"


def test_upstream_error_before_the_stream_is_a_plain_http_error(server, upstream) -> None:
    url, _ = server
    upstream.reply(
        Reply(status=400, json={"error": {"message": "bad tools", "type": "invalid_request_error"}})
    )
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "bad tools"


def test_wrong_content_type_for_a_stream_is_502(server, upstream) -> None:
    url, _ = server
    upstream.reply(Reply(json={"not": "a stream"}))
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 502


def test_empty_stream_is_502(server, upstream) -> None:
    url, _ = server
    upstream.reply(Reply(sse=["data: [DONE]\n\n"]))
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 502


def test_client_disconnect_closes_the_upstream(openai_config, upstream) -> None:
    seen: list[Any] = []

    class Watch:
        @hookimpl
        def on_cost(self, event):
            seen.append(event)

        @hookimpl
        def post_response(self, response):
            seen.append(response)

    with gateway_server(openai_config, plugins=[Watch()]) as (url, gateway):
        upstream.reply(Reply(sse=chunks([f"w{i}" for i in range(200)]), chunk_delay=0.05))
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=CHAT, timeout=10) as response:
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            next(line for line in lines if line.startswith("data: "))
        # the client went away after two chunks: the upstream must be closed promptly
        assert wait_for(lambda: upstream.closed_early == 1, timeout=3)
        assert upstream.finished_streams == 0
        assert wait_for(lambda: gateway.usage.get_all() and gateway.usage.get_all()[0].calls == 1)
    assert not any(hasattr(item, "choices") for item in seen), (
        "post_response must not fire for an abandoned stream"
    )


def test_stream_chunks_keep_unknown_fields(server, upstream) -> None:
    url, _ = server
    frames = chunks(["x"])
    frames[1] = {**frames[1], "obfuscation": "abc", "service_tier": "default"}  # type: ignore[dict-item]
    upstream.reply(Reply(sse=frames))
    data = events(httpx.post(f"{url}/v1/chat/completions", json=CHAT).text)
    assert json.loads(data[1])["obfuscation"] == "abc"


def test_client_disconnect_during_a_non_streaming_request_closes_the_upstream(
    openai_config, upstream
) -> None:
    seen: list[Any] = []

    class Watch:
        @hookimpl
        def on_error(self, error, context):
            seen.append((error.code, context.outcome))

    with gateway_server(openai_config, plugins=[Watch()]) as (url, _):
        upstream.reply(Reply(hang=True))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": False}, timeout=0.5)
        # the client gave up after 0.5 s: the gateway must hang up on the upstream too
        assert wait_for(lambda: upstream.closed_early == 1, timeout=3)
        assert wait_for(lambda: seen == [("client_disconnected", "client_disconnected")])
        # and the next request is served normally
        assert httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": False}).status_code == 200


def test_assembler_without_text_keeps_only_what_the_gateway_needs() -> None:
    tool = {"index": 0, "id": "call_1", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    frames = [f for f in chunks(["a"] * 2000) if isinstance(f, dict)]
    frames.insert(1, {**frames[1], "choices": [{"index": 0, "delta": {"tool_calls": [tool]}}]})
    full, lean = StreamAssembler(), StreamAssembler(keep_text=False)
    for frame in frames:
        full.add(frame)
        lean.add(frame)
    assert full.response()["choices"][0]["message"]["content"] == "a" * 2000
    response = lean.response()
    message = response["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["id"] == "call_1"
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": ""}
    assert response["choices"][0]["finish_reason"] == "stop" and lean.finish_reasons() == ["stop"]
    assert response["usage"] == full.response()["usage"] and response["id"] == "chatcmpl-stream1"
