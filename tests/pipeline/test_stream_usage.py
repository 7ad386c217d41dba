"""A stream's usage reaches the gateway typed (``UpstreamCall.usage``), so nothing parses back the
usage chunk a translator just built; a custom provider that only sends the usage chunk is still
priced from it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.providers.base import Provider, UpstreamCall
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.usage import TokenUsage

from ..support import gateway_server


def call_for(model: str) -> UpstreamCall:
    request = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    return UpstreamCall(request=request, model=model, http=httpx.AsyncClient(), request_id="r", stream=True)


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)


async def drain(provider: Provider, call: UpstreamCall, body: bytes) -> list[dict[str, Any]]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    call.http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return [chunk async for chunk in provider.stream(call)]


async def test_a_native_stream_reports_typed_usage() -> None:
    provider = Gateway({"providers": {"anthropic": {"api_key": "k"}}}).providers["anthropic"]
    call = call_for("claude-x")
    body = sse(
        {"type": "message_start", "message": {"id": "m1", "model": "claude-x", "usage": {"input_tokens": 5}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    )
    chunks = await drain(provider, call, body)
    assert call.usage == TokenUsage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
    assert chunks[-1]["usage"] == call.usage.to_openai()


async def test_an_openai_stream_reports_the_usage_it_carried() -> None:
    provider = Gateway({"providers": {"openai": {"api_key": "k"}}}).providers["openai"]
    call = call_for("gpt-x")
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
    body = (
        sse(
            {
                **head,
                "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
                "usage": None,
            },
            {**head, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
        )
        + b"data: [DONE]\n\n"
    )
    await drain(provider, call, body)
    assert call.usage == TokenUsage(prompt_tokens=3, completion_tokens=1, total_tokens=4)


class CountingProvider(Provider):
    """Streams one word; reports usage typed on the call (``typed``) or only in its usage chunk."""

    type_name = "counting"
    typed = True

    def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        return self._stream(call)

    async def _stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": call.model}
        yield {
            **head,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}],
        }
        yield {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        chunk_usage = {"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}
        if self.typed:  # the typed figure wins over the chunk's
            call.usage = TokenUsage(prompt_tokens=2_000_000, total_tokens=2_000_000)
        yield {**head, "choices": [], "usage": chunk_usage}


class UntypedProvider(CountingProvider):
    type_name = "untyped"
    typed = False


class Plugin:
    from rec_llm_gateway import hookimpl

    @hookimpl
    def register_providers(self) -> dict[str, type[Provider]]:
        return {"counting": CountingProvider, "untyped": UntypedProvider}


@pytest.mark.parametrize(("kind", "cost"), [("counting", 2.0), ("untyped", 1.0)])
def test_streams_are_priced_from_the_typed_usage_else_from_the_chunk(kind: str, cost: float) -> None:
    config = {"providers": {"up": {"type": kind}}, "pricing": {"up:m": {"input": 1, "output": 1}}}
    with gateway_server(config, plugins=[Plugin()]) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        chunks = list(
            client.chat.completions.create(
                model="up:m", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert chunks[-1].model_extra["x_rec_llm"]["cost_usd"] == pytest.approx(cost)
