"""Replay every recorded Bedrock exchange in ``$REC_LLM_TRAFFIC_DIR/bedrock``.

Each recorded request is written here as the OpenAI request a client would send; the provider must
send the recorded Converse body's meaning to the recorded URL, and the recorded answer (JSON, or
the binary event stream decoded by our decoder) must come back as the right OpenAI response,
chunks or error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from rec_llm_gateway.config import ProviderConfig
from rec_llm_gateway.errors import UpstreamError
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.bedrock import BedrockProvider
from rec_llm_gateway.providers.registry import ProviderRegistry
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.streaming import StreamAssembler

from ..bedrock_support import API_KEY, EVENTSTREAM
from ..support import traffic_dir

WEATHER_BARCELONA = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city name"}},
            "required": ["location"],
        },
    },
}
WEATHER_STRICT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "additionalProperties": False,
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "type": "object",
        },
    },
}
PARIS_CALL = {
    "id": "tooluse_8ZVLMmsdearTDSS0unN07z",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}

# exchange name -> the OpenAI request (without "model": taken from the recorded URL)
OPENAI_REQUESTS: dict[str, dict[str, Any]] = {
    "openllmetry_converse_stream_claude_tool_use": {
        "messages": [{"role": "user", "content": "What is the weather in Barcelona?"}],
        "tools": [WEATHER_BARCELONA],
        "max_tokens": 300,
        "temperature": 0.5,
    },
    "pydantic-ai_converse_error_400": {"messages": [{"role": "user", "content": "hello"}]},
    "pydantic-ai_converse_stream_error_400": {"messages": [{"role": "user", "content": "hello"}]},
    "pydantic-ai_converse_max_tokens": {
        "messages": [
            {"role": "system", "content": "You are a helpful chatbot."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 5,
    },
    "pydantic-ai_converse_nova_system": {
        "messages": [
            {"role": "system", "content": "You are a chatbot."},
            {"role": "user", "content": "Hello!"},
        ]
    },
    "pydantic-ai_converse_stream_nova": {
        "messages": [
            {"role": "system", "content": "You are a helpful chatbot."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "temperature": 0.0,
    },
    "pydantic-ai_converse_tool_use_roundtrip_claude.0": {
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER_STRICT],
        "tool_choice": "auto",
    },
    "pydantic-ai_converse_tool_use_roundtrip_claude.1": {
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [PARIS_CALL]},
            {"role": "tool", "tool_call_id": PARIS_CALL["id"], "content": "Weather in Paris: Sunny, 22°C"},
        ],
        "tools": [WEATHER_STRICT],
        "tool_choice": "auto",
    },
}


def folder() -> Path:
    root = traffic_dir()
    if root is None:
        pytest.skip("no recorded traffic (support.traffic_dir)")
    return root / "bedrock"


def test_every_recorded_exchange_is_replayed() -> None:
    names = {path.name.removesuffix(".request.json") for path in folder().glob("*.request.json")}
    assert names == set(OPENAI_REQUESTS)


def meaning(body: dict[str, Any]) -> dict[str, Any]:
    """A Converse body without the empty members some clients send (they mean "not set")."""
    return {key: value for key, value in body.items() if value not in ([], {})}


async def _chunks(data: bytes, size: int = 61) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class Exchange:
    """One recorded exchange served through the provider by an httpx MockTransport."""

    def __init__(self, name: str) -> None:
        base = folder()
        self.recorded_request = json.loads((base / f"{name}.request.json").read_text())
        self.stream = self.recorded_request["uri"].endswith("/converse-stream")
        self.model = unquote(urlsplit(self.recorded_request["uri"]).path.split("/")[2])
        self.response_json = base / f"{name}.response.json"
        self.response_bin = base / f"{name}.response.eventstream.bin"
        self.decoded = base / f"{name}.response.decoded.jsonl"
        self.openai_request = ChatCompletionRequest.model_validate(
            {"model": self.model, "stream": self.stream, **OPENAI_REQUESTS[name]}
        )
        self.sent: list[httpx.Request] = []

    def provider(self) -> BedrockProvider:
        settings = ProviderConfig.model_validate({"region": "us-east-1", "api_key": API_KEY})
        provider = ProviderRegistry().build("bedrock", settings)
        assert isinstance(provider, BedrockProvider)
        return provider

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if self.response_bin.exists():
            content = self.response_bin.read_bytes()
            return httpx.Response(200, headers={"content-type": EVENTSTREAM}, content=_chunks(content))
        recorded = json.loads(self.response_json.read_text())
        return httpx.Response(recorded["_status"], json=recorded["body"])

    async def run(self) -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.answer)) as http:
            call = UpstreamCall(
                request=self.openai_request,
                model=self.model,
                http=http,
                request_id="replay",
                stream=self.stream,
            )
            provider = self.provider()
            if not self.stream:
                return (await provider.complete(call)).response
            return [chunk async for chunk in provider.stream(call)]

    def check_request(self) -> None:
        [sent] = self.sent
        assert str(sent.url) == self.recorded_request["uri"]
        assert json.loads(sent.content) == meaning(self.recorded_request["body"])


@pytest.mark.parametrize("name", sorted(OPENAI_REQUESTS))
async def test_replay(name: str) -> None:
    exchange = Exchange(name)
    if exchange.response_json.exists() and json.loads(exchange.response_json.read_text())["_status"] >= 400:
        recorded = json.loads(exchange.response_json.read_text())
        with pytest.raises(UpstreamError) as caught:
            await exchange.run()
        exchange.check_request()
        assert caught.value.status_code == recorded["_status"] == 400
        assert caught.value.message == recorded["body"]["message"]
        return
    result = await exchange.run()
    exchange.check_request()
    if exchange.stream:
        check_stream(exchange, result)
    else:
        check_response(exchange, result)


def check_response(exchange: Exchange, response: dict[str, Any]) -> None:
    recorded = json.loads(exchange.response_json.read_text())["body"]
    blocks = recorded["output"]["message"]["content"]
    choice = response["choices"][0]
    texts = "".join(block["text"] for block in blocks if "text" in block)
    uses = [block["toolUse"] for block in blocks if "toolUse" in block]
    assert (choice["message"]["content"] or "") == texts
    calls = choice["message"].get("tool_calls") or []
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (use["toolUseId"], use["name"], use["input"]) for use in uses
    ]
    expected_finish = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}[
        recorded["stopReason"]
    ]
    assert choice["finish_reason"] == expected_finish
    usage = recorded["usage"]
    assert response["usage"]["prompt_tokens"] == usage["inputTokens"]
    assert response["usage"]["completion_tokens"] == usage["outputTokens"]
    assert response["usage"]["total_tokens"] == usage["totalTokens"]
    assert response["model"] == exchange.model


def check_stream(exchange: Exchange, chunks: list[dict[str, Any]]) -> None:
    events = [json.loads(line) for line in exchange.decoded.read_text().splitlines()]
    payloads = [(event["headers"][":event-type"], event["payload"]) for event in events]
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    response = assembler.response()
    choice = response["choices"][0]
    text = "".join(
        p["delta"]["text"] for kind, p in payloads if kind == "contentBlockDelta" and "text" in p["delta"]
    )
    assert choice["message"]["content"] == text
    starts = [
        p["start"]["toolUse"]
        for kind, p in payloads
        if kind == "contentBlockStart" and "toolUse" in p["start"]
    ]
    calls = choice["message"].get("tool_calls") or []
    assert [(c["id"], c["function"]["name"]) for c in calls] == [(s["toolUseId"], s["name"]) for s in starts]
    for call in calls:
        json.loads(call["function"]["arguments"])  # the fragments add up to parseable JSON
    stop = next(p["stopReason"] for kind, p in payloads if kind == "messageStop")
    assert choice["finish_reason"] == {"end_turn": "stop", "tool_use": "tool_calls"}[stop]
    # the first chunk carries the role; usage comes once, last, after the finish chunk
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    assert usage_chunks == [chunks[-1]] and chunks[-1]["choices"] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == choice["finish_reason"]
    usage = next(p["usage"] for kind, p in payloads if kind == "metadata")
    assert chunks[-1]["usage"] == {
        "prompt_tokens": usage["inputTokens"],
        "completion_tokens": usage["outputTokens"],
        "total_tokens": usage["totalTokens"],
    }
