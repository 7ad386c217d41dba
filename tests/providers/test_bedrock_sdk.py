"""The stock openai SDK through the gateway (uvicorn on loopback) to a fake Bedrock speaking real
Converse JSON and binary event streams."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest

from ..bedrock_support import (
    ACCESS_KEY,
    EVENTSTREAM,
    PNG,
    SECRET_KEY,
    bedrock_error,
    bedrock_handler,
    event,
    exception_frame,
    expected_signature,
    isolate_aws,
    provider_config,
    text_frames,
)
from ..support import WEATHER, FakeUpstream, Reply, fresh, gateway_server, serve_fake

NOVA = "us.amazon.nova-micro-v1:0"
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def _bedrock_server() -> Iterator[FakeUpstream]:
    with serve_fake(bedrock_handler) as fake:
        yield fake


@pytest.fixture
def bedrock(_bedrock_server: FakeUpstream) -> Iterator[FakeUpstream]:
    yield from fresh(_bedrock_server)


@pytest.fixture
def gateway(bedrock: FakeUpstream) -> Iterator[str]:
    config = {
        "providers": {
            "bedrock": provider_config(
                bedrock.url, image_fetch={"allow_private_networks": True}, models=[NOVA, CLAUDE]
            )
        }
    }
    with gateway_server(config, "fastapi") as (url, _):
        yield url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0)


def check_signed(bedrock: FakeUpstream, model: str, stream: bool = False) -> None:
    sent = bedrock.last
    operation = "converse-stream" if stream else "converse"
    url = f"{bedrock.url}/model/{quote(model, safe='')}/{operation}"
    signature = sent.headers["authorization"].rsplit("Signature=", 1)[1]
    assert signature == expected_signature("POST", url, sent.headers, sent.body)
    assert ACCESS_KEY in sent.headers["authorization"] and "client-key" not in str(sent.headers)


def test_plain_text(gateway: str, bedrock: FakeUpstream) -> None:
    for model in (f"bedrock:{NOVA}", CLAUDE):  # prefixed, and unprefixed by its family prefix
        response = client(gateway).chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping pong"}],
            max_tokens=50,
            temperature=0.3,
        )
        assert response.choices[0].message.content == "ping pong"
        assert response.choices[0].finish_reason == "stop"
        assert response.usage is not None and response.usage.total_tokens == 15
        extension = response.model_extra["x_rec_llm"]
        assert extension["provider"] == "bedrock"
        assert extension["cost_usd"] > 0  # priced from genai-prices' "aws" table
        sent = bedrock.last.json
        assert sent["system"] == [{"text": "Be brief."}]
        assert sent["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.3}
        assert bedrock.last.path == f"/model/{model.removeprefix('bedrock:')}/converse"
        check_signed(bedrock, model.removeprefix("bedrock:"))


def test_streaming_text(gateway: str, bedrock: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "onetwothree"
    assert all(c.choices for c in chunks), "the usage chunk is stripped when the client did not ask"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["x_rec_llm"]["provider"] == "bedrock"
    check_signed(bedrock, NOVA, stream=True)
    assert bedrock.last.headers["accept"] == EVENTSTREAM

    stream = client(gateway).chat.completions.create(
        model=NOVA,
        messages=[{"role": "user", "content": "a b"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and chunks[-1].choices == []
    assert usage_chunks[0].usage.completion_tokens == 2
    assert chunks[-1].model_extra["x_rec_llm"]["cost_usd"] > 0


def test_tool_call_and_result_round_trip(gateway: str, bedrock: FakeUpstream) -> None:
    sdk = client(gateway)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Paris"}]
    first = sdk.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[WEATHER], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tooluse_fake01",
        "get_weather",
        {"city": "Paris"},
    )
    assert bedrock.last.json["toolConfig"]["toolChoice"] == {"any": {}}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22C"},
    ]
    second = sdk.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "The tool said: Sunny, 22C"
    assert second.choices[0].finish_reason == "stop"
    turns = bedrock.last.json["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_fake01", "name": "get_weather", "input": {"city": "Paris"}}}
    ]
    assert turns[2]["content"][0]["toolResult"]["toolUseId"] == "tooluse_fake01"


def test_streaming_tool_calls(gateway: str, bedrock: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "Rome"}], tools=[WEATHER], stream=True
    )
    chunks = list(stream)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.id or ""
            slot["name"] += (delta.function.name or "") if delta.function else ""
            slot["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert list(calls) == [0]
    assert calls[0]["id"] == "tooluse_fake01" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Rome"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Checking."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_inputs(gateway: str, bedrock: FakeUpstream) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    http_url = f"{bedrock.url}/images/cat.png"
    for url in (data_url, http_url):
        response = client(gateway).chat.completions.create(
            model=NOVA,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
        )
        assert response.choices[0].message.content == f"image:png:{len(PNG)}"
    assert bedrock.requests[-2].path == "/images/cat.png"  # the gateway fetched the URL itself
    assert "authorization" not in bedrock.requests[-2].headers  # without AWS credentials


def test_a_private_image_url_is_refused_by_default(bedrock: FakeUpstream) -> None:
    config = {"providers": {"bedrock": provider_config(bedrock.url)}}
    with gateway_server(config, "fastapi") as (url, _), pytest.raises(openai.BadRequestError) as caught:
        client(url).chat.completions.create(
            model=NOVA,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": f"{bedrock.url}/images/x.png"}}],
                }
            ],
        )
    assert "non-public address" in caught.value.message
    assert bedrock.requests == []


@pytest.mark.parametrize(
    ("status", "error_type", "exception", "expected_status"),
    [
        (400, "ValidationException", openai.BadRequestError, 400),
        (403, "AccessDeniedException", openai.PermissionDeniedError, 403),
        (429, "ThrottlingException", openai.RateLimitError, 429),
        (500, "InternalServerException", openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_errors(
    gateway: str,
    bedrock: FakeUpstream,
    status: int,
    error_type: str,
    exception: type[openai.APIStatusError],
    expected_status: int,
    stream: bool,
) -> None:
    message = f"Upstream says no ({error_type}) {SECRET_KEY}"
    bedrock.reply(
        bedrock_error(status, error_type, message, **({"Retry-After": "3"} if status == 429 else {}))
    )
    with pytest.raises(exception) as caught:  # before any byte is streamed: an HTTP error status
        client(gateway).chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    error = caught.value
    assert error.status_code == expected_status
    assert f"Upstream says no ({error_type})" in error.message
    assert SECRET_KEY not in error.message and SECRET_KEY not in error.response.text
    body = error.response.json()["error"]
    if status < 500:
        assert body["type"] == error_type
    if status == 429:
        assert error.response.headers["retry-after"] == "3"


def test_in_stream_throttling_becomes_the_final_sse_error_event(gateway: str, bedrock: FakeUpstream) -> None:
    frames = [
        *text_frames(["partial", " answer"])[:3],
        exception_frame("throttlingException", "Too many tokens, please wait"),
    ]
    bedrock.reply(Reply(sse=list(frames), content_type=EVENTSTREAM))
    received: list[str] = []
    stream = client(gateway).chat.completions.create(
        model=NOVA, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Too many tokens, please wait"):
        received.extend(chunk.choices[0].delta.content or "" for chunk in stream)
    assert "".join(received) == "partial answer"

    # the raw SSE: content chunks, then one error event in OpenAI's envelope, then the stream closes
    bedrock.reply(Reply(sse=list(frames), content_type=EVENTSTREAM))
    raw = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": NOVA, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=10,
    )
    events = [line.removeprefix("data: ") for line in raw.text.split("\n\n") if line]
    error = json.loads(events[-1])["error"]
    assert error["type"] == "ThrottlingException" and "Too many tokens" in error["message"]
    assert "[DONE]" not in raw.text


def test_a_corrupt_event_stream_ends_with_an_error_event(gateway: str, bedrock: FakeUpstream) -> None:
    broken = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    broken[-6] ^= 0xFF
    frames = [*text_frames(["fine"])[:2], bytes(broken)]
    bedrock.reply(Reply(sse=frames, content_type=EVENTSTREAM))
    with pytest.raises(openai.APIError, match="corrupt event stream"):
        list(
            client(gateway).chat.completions.create(
                model=NOVA, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )


def test_models_and_health_routes(bedrock: FakeUpstream) -> None:
    config = {"providers": {"bedrock": provider_config(bedrock.url)}}
    with gateway_server(config, "fastapi") as (url, _):
        models = {entry["id"]: entry for entry in httpx.get(f"{url}/v1/models").json()["data"]}
        entry = models["bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0"]
        assert entry["context_window"] == 200_000 and entry["capabilities"]["vision"] is True
        assert "bedrock:amazon.nova-micro-v1:0" in models
        health = httpx.get(f"{url}/providers/bedrock/health").json()
        assert health["status"] == "healthy", health
        sent = bedrock.last
        assert sent.method == "GET" and sent.path == "/foundation-models"
        signature = sent.headers["authorization"].rsplit("Signature=", 1)[1]
        assert signature == expected_signature(
            "GET", f"{bedrock.url}/foundation-models?byOutputModality=TEXT", sent.headers, b""
        )
        bedrock.reply(bedrock_error(403, "UnrecognizedClientException", "The security token is invalid."))
        health = httpx.get(f"{url}/providers/bedrock/health").json()
        assert health["status"] == "unhealthy" and "security token is invalid" in health["error"]
        described = httpx.get(f"{url}/providers").json()
        assert SECRET_KEY not in json.dumps(described) and ACCESS_KEY not in json.dumps(described)
