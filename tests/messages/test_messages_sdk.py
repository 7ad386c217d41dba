"""The real ``anthropic`` SDK against ``/v1/messages`` on a gateway served by uvicorn, to Claude
natively (Anthropic, Bedrock, Vertex) and to OpenAI, Gemini and Bedrock Converse translated: create,
stream with the SDK's event helpers and ``get_final_message``, tools over several turns, images,
thinking and ``count_tokens``."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest

from .. import messages_fixtures as fixtures
from ..bedrock_support import PNG
from ..messages_fixtures import CLAUDE, NATIVE, TRANSLATED, sdk
from ..messages_support import COUNT, THINKING
from ..support import FakeUpstream

fixtures.install(globals())  # the shared fixtures: upstreams, claude, gateway_url, ...

TARGETS = {**NATIVE, **TRANSLATED}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
}
SEEN_IMAGE = {
    "anthropic": "[images: base64:image/png]",
    "bedrock": "[images: base64:image/png]",
    "vertex": "[images: base64:image/png]",
    "openai": "[images: 1]",
    "gemini": "saw inline image/png",
    "nova": "image:png:",
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("target", TARGETS)
def test_create(gateway_url: str, target: str) -> None:
    message = sdk(gateway_url).messages.create(
        model=TARGETS[target], max_tokens=200, system="Be brief.", messages=user("hello over there")
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello over there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


@pytest.mark.parametrize("target", TARGETS)
def test_stream_with_event_helpers(gateway_url: str, target: str) -> None:
    with sdk(gateway_url).messages.stream(
        model=TARGETS[target], max_tokens=200, messages=user("stream these four words")
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    # (the fake Bedrock sends its words without the spaces between them)
    assert "".join(pieces) == ("streamthesefourwords" if target == "nova" else "stream these four words")
    assert len(pieces) > 1  # it arrived in pieces, not at once
    assert final.content[0].text == "".join(pieces)  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("target", TARGETS)
def test_tools_over_several_turns(gateway_url: str, target: str, stream: bool) -> None:
    client = sdk(gateway_url)
    messages: list[dict[str, Any]] = user("what is the weather in Paris?")

    def ask() -> anthropic.types.Message:
        arguments: dict[str, Any] = {"model": TARGETS[target], "max_tokens": 300, "tools": [WEATHER_TOOL]}
        if not stream:
            return client.messages.create(messages=messages, **arguments)
        with client.messages.stream(messages=messages, **arguments) as events:
            return events.get_final_message()

    first = ask()
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert calls and calls[0].name == "get_weather" and set(calls[0].input) == {"city"}  # type: ignore[arg-type]
    messages.append({"role": "assistant", "content": [block.model_dump() for block in first.content]})
    results = [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 24C"} for call in calls]
    messages.append({"role": "user", "content": results})
    second = ask()
    assert second.stop_reason == "end_turn"
    said = second.content[-1].text  # type: ignore[union-attr]
    assert "sunny,24C" in said.replace(" ", "")  # (the fake Bedrock drops the spaces when streaming)
    # a third turn on top of the whole history is accepted (the fake Gemini and Bedrock call the
    # tool again whenever tools are offered; the others echo)
    messages.append({"role": "assistant", "content": [block.model_dump() for block in second.content]})
    messages.append({"role": "user", "content": "thanks"})
    third = ask()
    assert third.stop_reason == ("tool_use" if target in ("gemini", "nova") else "end_turn")


@pytest.mark.parametrize("target", TARGETS)
def test_images(gateway_url: str, target: str) -> None:
    content = [IMAGE, {"type": "text", "text": "describe"}]
    message = sdk(gateway_url).messages.create(
        model=TARGETS[target], max_tokens=200, messages=[{"role": "user", "content": content}]
    )
    assert SEEN_IMAGE[target] in message.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("target", NATIVE)
def test_thinking_natively_keeps_the_signature_both_ways(
    gateway_url: str, target: str, claude: FakeUpstream
) -> None:
    client = sdk(gateway_url)
    thinking = {"type": "enabled", "budget_tokens": 2048}
    with client.messages.stream(
        model=NATIVE[target],
        max_tokens=4096,
        thinking=thinking,
        messages=user("think about it"),  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].model_dump() == THINKING
    history = [
        *user("think about it"),
        {"role": "assistant", "content": [b.model_dump() for b in final.content]},
    ]
    client.messages.create(
        model=NATIVE[target],
        max_tokens=4096,
        thinking=thinking,
        messages=[*history, *user("and now?")],  # type: ignore[arg-type]
    )
    sent = claude.last.json["messages"][1]["content"][0]
    assert sent == THINKING  # the signed block went back to Claude as it came


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_thinking_translated_is_reasoning(
    gateway_url: str, upstreams: dict[str, FakeUpstream], stream: bool
) -> None:
    client = sdk(gateway_url)
    arguments: dict[str, Any] = {
        "model": "openai:o3",  # a reasoning model: for gpt-4o the effort is dropped (see fit_to_model)
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "messages": user("think about it"),
    }
    if stream:
        with client.messages.stream(**arguments) as events:
            kinds = [event.type for event in events]
            final = events.get_final_message()
        assert "thinking" in kinds and "text" in kinds
    else:
        final = client.messages.create(**arguments)
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "I reason."  # type: ignore[union-attr]
    assert upstreams["openai"].last.json["reasoning_effort"] == "medium"
    history = [
        *user("think about it"),
        {"role": "assistant", "content": [b.model_dump() for b in final.content]},
    ]
    client.messages.create(**{**arguments, "messages": [*history, *user("more")]})
    assert upstreams["openai"].last.json["messages"][1] == {"role": "assistant", "content": "think about it"}


@pytest.mark.parametrize(
    ("target", "expected"), [("anthropic", COUNT), ("bedrock", COUNT + 1), ("vertex", COUNT + 2)]
)
def test_count_tokens_natively(gateway_url: str, target: str, expected: int) -> None:
    counted = sdk(gateway_url).messages.count_tokens(model=NATIVE[target], messages=user("count me"))
    assert counted.input_tokens == expected


@pytest.mark.parametrize("target", TRANSLATED)
def test_count_tokens_estimated(gateway_url: str, target: str, upstreams: dict[str, FakeUpstream]) -> None:
    client = sdk(gateway_url)
    short = client.messages.count_tokens(model=TRANSLATED[target], messages=user("hi"))
    long = client.messages.count_tokens(
        model=TRANSLATED[target], messages=user("a much longer question " * 40), tools=[WEATHER_TOOL]
    )
    assert 0 < short.input_tokens < long.input_tokens
    assert not any(fake.requests for fake in upstreams.values())  # estimated: no upstream call


def test_sdk_errors_in_anthropics_shape(gateway_url: str) -> None:
    with pytest.raises(anthropic.AuthenticationError) as denied:
        sdk(gateway_url, "wrong-key").messages.create(model=CLAUDE, max_tokens=5, messages=user("x"))
    assert denied.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid gateway API key."},
    }
    client = sdk(gateway_url)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nowhere:model", max_tokens=5, messages=user("x"))
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(
            model=TRANSLATED["openai"],
            max_tokens=5,
            messages=user("x"),
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )  # type: ignore[list-item]
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools[0].type" in json.dumps(refused.value.body) or "web_search" in str(refused.value)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=user("fail 429"))
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["error"] == {"type": "rate_limit_error", "message": "fake failure 429"}  # type: ignore[index]


def test_error_mid_stream_reaches_the_sdk(gateway_url: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as broken:  # noqa: PT012
        with sdk(gateway_url).messages.stream(
            model=CLAUDE, max_tokens=50, messages=user("break mid-stream")
        ) as stream:
            for _ in stream:
                pass
    assert "Overloaded" in str(broken.value)
