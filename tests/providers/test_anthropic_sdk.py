"""The stock openai SDK through the gateway (uvicorn on loopback) to a fake Anthropic upstream that is
a real HTTP server speaking Anthropic's wire format (``anthropic_fake``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from rec_llm_gateway.pricing import PriceTable
from rec_llm_gateway.usage import TokenUsage

from ..anthropic_fake import API_KEY, CACHE_READ, CACHE_WRITE, INPUT, anthropic_upstream, error, frame
from ..support import FakeUpstream, Reply, assert_streamed_text, fresh, gateway_server, serve_fake

MODEL = "claude-sonnet-4-5"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def _anthropic_server() -> Iterator[FakeUpstream]:
    with serve_fake(anthropic_upstream) as fake:
        yield fake


@pytest.fixture
def fake(_anthropic_server: FakeUpstream) -> Iterator[FakeUpstream]:
    yield from fresh(_anthropic_server)


@pytest.fixture
def gateway_url(fake: FakeUpstream) -> Iterator[str]:
    config = {
        "providers": {
            "anthropic": {"api_key": API_KEY, "base_url": fake.url, "timeout": 5, "prices_from": "anthropic"},
        },
    }
    with gateway_server(config, "fastapi") as (url, _):
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="anything", max_retries=0) as client:
        yield client


def test_plain_text(client: openai.OpenAI, fake: FakeUpstream) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
        temperature=0.2,
        stop=["END"],
        user="user-7",
    )
    assert response.choices[0].message.content == "hello there"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5-20250929"
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens == INPUT + CACHE_WRITE + CACHE_READ
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == CACHE_READ
    assert usage.completion_tokens == 2
    extension = response.model_extra["x_rec_llm"]
    assert extension["provider"] == "anthropic"
    # priced with the cache rates: cheaper than if every prompt token were fresh input
    split = TokenUsage(16, 2, 18, cached_tokens=CACHE_READ, cache_write_tokens=CACHE_WRITE)
    table = PriceTable()
    expected = table.cost("anthropic", "anthropic", "claude-sonnet-4-5-20250929", split)
    flat = table.cost("anthropic", "anthropic", "claude-sonnet-4-5-20250929", TokenUsage(16, 2, 18))
    assert expected is not None and flat is not None and expected != flat
    assert extension["cost_usd"] == pytest.approx(expected)

    request = fake.last
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.json
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert body["temperature"] == 0.2
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-7"}
    assert body["max_tokens"] == 8192  # the catalog's 64k max output, capped


def test_streaming_text(client: openai.OpenAI, fake: FakeUpstream) -> None:
    stream = client.chat.completions.create(
        model=f"anthropic:{MODEL}",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert_streamed_text(chunks, "one two three")
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and not chunks[-1].choices
    usage = usage_chunks[0].usage
    assert usage.prompt_tokens == INPUT + CACHE_WRITE + CACHE_READ
    assert usage.prompt_tokens_details.cached_tokens == CACHE_READ
    assert usage.completion_tokens == 3
    assert chunks[-1].model_extra["x_rec_llm"]["cost_usd"] > 0
    assert {chunk.id for chunk in chunks} == {"msg_fake01"}
    assert fake.last.json["stream"] is True


def test_stream_without_usage_request_hides_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_and_result_round_trip(client: openai.OpenAI, fake: FakeUpstream) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris and Rome?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = choice.message.tool_calls
    assert calls is not None and [call.function.name for call in calls] == ["get_weather", "get_weather"]
    assert [json.loads(call.function.arguments) for call in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    sent = fake.last.json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}

    messages.append(choice.message.model_dump(exclude_none=True))
    for call, weather in zip(calls, ("sunny", "rainy"), strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": weather})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "tool results: sunny, rainy"
    assert second.choices[0].finish_reason == "stop"
    turns = fake.last.json["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": calls[0].id, "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": calls[1].id, "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny"},
        {"type": "tool_result", "tool_use_id": calls[1].id, "content": "rainy"},
    ]


def test_streaming_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "weather in Paris and Rome?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    calls: dict[int, dict[str, Any]] = {}
    text = ""
    for chunk in chunks:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for call in delta.tool_calls or ():
            slot = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
            if call.id:
                slot["id"] = call.id
            if call.function and call.function.name:
                slot["name"] = call.function.name
            if call.function and call.function.arguments:
                slot["arguments"] += call.function.arguments
    assert text == "Let me check."
    # indexes count tool calls only (Anthropic's block indexes are 1 and 2: the text was block 0)
    assert sorted(calls) == [0, 1]
    assert [calls[i]["id"] for i in (0, 1)] == ["toolu_0", "toolu_1"]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [{"city": "Paris"}, {"city": "Rome"}]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_input(client: openai.OpenAI, fake: FakeUpstream) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what are these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            }
        ],
    )
    assert response.choices[0].message.content == (
        "what are these? [images: https://example.com/cat.jpg,base64:image/png]"
    )
    assert fake.last.json["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


def test_json_schema_response_format(client: openai.OpenAI, fake: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "capital of France"}],
        response_format={"type": "json_schema", "json_schema": {"name": "Answer", "schema": schema}},
    )
    choice = response.choices[0]
    assert json.loads(choice.message.content) == {"answer": "capital of France"}
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    body = fake.last.json
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert body["tools"][0]["input_schema"] == schema


def test_models_and_health(gateway_url: str, fake: FakeUpstream) -> None:
    models = httpx.get(f"{gateway_url}/v1/models").json()["data"]
    ids = [model["id"] for model in models]
    assert "anthropic:claude-sonnet-4-5" in ids
    entry = next(model for model in models if model["id"] == "anthropic:claude-haiku-4-5")
    assert entry["context_window"] == 200_000 and entry["max_output_tokens"] == 64_000
    health = httpx.get(f"{gateway_url}/providers/anthropic/health").json()
    assert health["status"] == "healthy", health
    assert fake.last.method == "GET" and fake.last.path == "/v1/models"


def test_health_reports_a_bad_key(fake: FakeUpstream) -> None:
    config = {"providers": {"anthropic": {"api_key": "sk-ant-wrong-key-0000000", "base_url": fake.url}}}
    with gateway_server(config, "fastapi") as (url, _):
        health = httpx.get(f"{url}/providers/anthropic/health").json()
    assert health["status"] == "unhealthy"
    assert "invalid x-api-key" in health["error"]


def test_untranslatable_request_is_400_before_any_upstream_call(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], n=2)
    assert caught.value.body["param"] == "n"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("reply", "status", "error_type", "exception"),
    [
        (
            error(400, "invalid_request_error", "messages: bad"),
            400,
            "invalid_request_error",
            openai.BadRequestError,
        ),
        (
            error(401, "authentication_error", "invalid x-api-key"),
            401,
            "authentication_error",
            openai.AuthenticationError,
        ),
        (
            error(429, "rate_limit_error", "slow down", {"retry-after": "17"}),
            429,
            "rate_limit_error",
            openai.RateLimitError,
        ),
        (error(500, "api_error", "Internal server error"), 502, "api_error", openai.APIStatusError),
        (error(529, "overloaded_error", "Overloaded"), 503, "overloaded_error", openai.InternalServerError),
    ],
    ids=["400", "401", "429", "500", "529"],
)
def test_upstream_errors(
    client: openai.OpenAI, fake: FakeUpstream, reply: Reply, status: int, error_type: str, exception: type
) -> None:
    fake.reply(reply)
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    error_ = caught.value
    assert error_.status_code == status
    assert error_.body["type"] == error_type
    assert reply.json["error"]["message"] in error_.body["message"]
    if status == 429:
        assert error_.response.headers["retry-after"] == "17"


def test_upstream_error_before_a_stream(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.reply(error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(openai.InternalServerError) as caught:
        list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    assert caught.value.status_code == 503


def test_error_event_mid_stream(gateway_url: str, fake: FakeUpstream) -> None:
    failure = frame({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    fake.reply(Reply(sse=[*anthropic_upstream_stream_start(), failure]))
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    deltas = [json.loads(event)["choices"][0]["delta"] for event in events[:-1]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "par"}]
    last = json.loads(events[-1])
    assert last["error"]["type"] == "overloaded_error" and last["error"]["message"].endswith("Overloaded")


def anthropic_upstream_stream_start() -> list[Any]:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_x",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
    return [
        frame(start),
        frame({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}}),
    ]


def test_upstream_error_text_is_scrubbed_of_the_key(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.reply(error(401, "authentication_error", f"invalid x-api-key: {API_KEY}"))
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert API_KEY not in caught.value.body["message"]
    assert "[redacted]" in caught.value.body["message"]
