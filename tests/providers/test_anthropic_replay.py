"""Replay of every recorded Anthropic exchange in ``$REC_LLM_TRAFFIC_DIR/anthropic``.

For each recording, the OpenAI request a client would send for it goes through the provider over an
``httpx.MockTransport`` that answers with the recorded response. The request the provider sends
must mean the same as the recorded one (system, messages, tools, tool_choice, parameters), and what
comes back (a completion, or chunks assembled as the gateway assembles them) must carry the recorded
text, tool calls (arguments that parse to the recorded input), finish reason and usage, cache
included. The expected values are read from the recording by an independent little parser here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rec_llm_gateway.errors import GatewayError
from rec_llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from rec_llm_gateway.providers.anthropic.errors import error_from_anthropic
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.streaming import StreamAssembler

from ..support import traffic_dir

TRAFFIC = traffic_dir()
pytestmark = pytest.mark.skipif(
    TRAFFIC is None,
    reason="no recorded traffic (support.traffic_dir)",
)
FOLDER = (TRAFFIC or Path("/nonexistent")) / "anthropic"

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / name).read_text())


def recorded_tools(name: str) -> list[dict[str, Any]]:
    """The OpenAI tools a client would send: the recorded tools, written the OpenAI way."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool["description"],
                "parameters": tool["input_schema"],
            },
        }
        for tool in recorded(f"{name}.request.json")["body"]["tools"]
    ]


def text_parts(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


PELICAN = "llm-anthropic_test_stream_events_tool_calls"
WEATHER = "openllmetry_tools"
CITY = "pydantic-ai_tool_output_tool_choice_any.0"


def openai_requests() -> dict[str, dict[str, Any]]:
    """Recording name -> the OpenAI request (without model and stream) a client would send for it."""
    pelican, weather, city = recorded_tools(PELICAN), recorded_tools(WEATHER), recorded_tools(CITY)
    return {
        "llm-anthropic_test_prompt": {
            "messages": [{"role": "user", "content": text_parts("Two names for a pet pelican, be brief")}],
            "max_tokens": 8192,
            "temperature": 1.0,
        },
        "llm-anthropic_test_stream_events_text": {
            "messages": [{"role": "user", "content": text_parts("Say just hello")}],
            "max_completion_tokens": 8192,
            "temperature": 1.0,
        },
        "llm-anthropic_test_stream_events_tool_calls": {
            "messages": [{"role": "user", "content": text_parts("Generate one name for a pet pelican")}],
            "max_tokens": 8192,
            "temperature": 1.0,
            "tools": pelican,
        },
        "llm-anthropic_test_tools.0": {
            "messages": [{"role": "user", "content": text_parts("Two names for a pet pelican")}],
            "max_tokens": 8192,
            "temperature": 1.0,
            "tools": pelican,
        },
        "llm-anthropic_test_tools.1": {
            "messages": [
                {"role": "user", "content": text_parts("Two names for a pet pelican")},
                {
                    "role": "assistant",
                    "content": " ",
                    "tool_calls": [
                        {
                            "id": tool_id,
                            "type": "function",
                            "function": {"name": "pelican_name_generator", "arguments": "{}"},
                        }
                        for tool_id in ("toolu_01LtHJmixrs9NcWQkK8hu8hj", "toolu_01N8a4jWyf116qKTMqKKmjyt")
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_01LtHJmixrs9NcWQkK8hu8hj", "content": "Charles"},
                {"role": "tool", "tool_call_id": "toolu_01N8a4jWyf116qKTMqKKmjyt", "content": "Sammy"},
            ],
            "max_tokens": 8192,
            "temperature": 1.0,
            "tools": pelican,
        },
        "openllmetry_message_create": {
            "messages": [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}],
            "max_tokens": 1024,
        },
        "openllmetry_message_streaming": {
            "messages": [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}],
            "max_tokens": 1024,
        },
        "openllmetry_thinking_streaming": {
            "messages": [
                {
                    "role": "user",
                    "content": text_parts(
                        "How many times does the letter 'r' appear in the word strawberry?"
                    ),
                }
            ],
            "max_tokens": 2048,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        "openllmetry_tools": {
            "messages": [
                {
                    "role": "user",
                    "content": "What is the weather like right now in New York? "
                    "Also what time is it there now?",
                }
            ],
            "max_tokens": 1024,
            "tools": weather,
        },
        "openllmetry_tools_history": {
            "messages": [
                {"role": "user", "content": "What is the weather and current time in San Francisco?"},
                {
                    "role": "assistant",
                    "content": "I'll help you get the weather and current time in San Francisco.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location": "San Francisco, CA"}',
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny and 65 degrees Fahrenheit"},
            ],
            "max_tokens": 1024,
            "tools": weather,
        },
        "openllmetry_tools_streaming": {
            "messages": [
                {"role": "user", "content": "What is the weather and current time in San Francisco?"}
            ],
            "max_tokens": 1024,
            "tools": weather,
        },
        "pydantic-ai_error_400_invalid_request": {
            "messages": [{"role": "user", "content": text_parts("What is 2+2?")}],
            "max_tokens": 4096,
            "output_config": {"effort": "xhigh"},  # an Anthropic parameter: passed through
        },
        "pydantic-ai_image_url_source": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this vegetable?"},
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": "https://t3.ftcdn.net/jpg/00/85/79/92/"
                                "360_F_85799278_0BBGV9OAdQDTLnKwAPBCcg1J7QtiieJY.jpg"
                            },
                        },
                    ],
                }
            ],
            "max_tokens": 4096,
        },
        "pydantic-ai_system_prompt": {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant.\n\n"},
                {"role": "user", "content": text_parts("What is the capital of France?")},
            ],
            "max_tokens": 4096,
        },
        "pydantic-ai_tool_output_tool_choice_any.0": {
            "messages": [
                {"role": "user", "content": text_parts("What is the largest city in the user country?")}
            ],
            "max_tokens": 4096,
            "tools": city,
            "tool_choice": "required",
        },
        "pydantic-ai_tool_output_tool_choice_any.1": {
            "messages": [
                {"role": "user", "content": text_parts("What is the largest city in the user country?")},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01X9wcHKKAZD9tBC711xipPa",
                            "type": "function",
                            "function": {"name": "get_user_country", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_01X9wcHKKAZD9tBC711xipPa", "content": "Mexico"},
            ],
            "max_tokens": 4096,
            "tools": city,
            "tool_choice": "required",
        },
    }


# Recordings that are not a Messages call the gateway makes (count_tokens), or have no request:
# only their response is replayed (test_error_responses, test_synthetic_stream_error_event).
RESPONSE_ONLY = {"pydantic-ai_error_404_not_found_count_tokens", "SYNTHETIC_sdk-test_stream_error_event"}
CASES = sorted(openai_requests()) if TRAFFIC is not None else []


def test_every_recording_is_replayed() -> None:
    names = {path.name.split(".request.")[0].split(".response.")[0] for path in FOLDER.iterdir()}
    names = {name.removesuffix(".sse") for name in names}
    assert names == set(CASES) | RESPONSE_ONLY


# -- the request's meaning ---------------------------------------------------------------------------


def meaning(body: dict[str, Any]) -> dict[str, Any]:
    """What a Messages body asks for, without the spellings that mean the same thing."""
    body = dict(body)
    if body.get("stream") is False:
        del body["stream"]
    if isinstance(body.get("system"), str):
        body["system"] = text_parts(body["system"])
    turns = []
    for turn in body["messages"]:
        content = turn["content"]
        blocks = text_parts(content) if isinstance(content, str) else content
        blocks = [
            {key: value for key, value in block.items() if not (key == "is_error" and value is False)}
            for block in blocks
        ]
        turns.append({"role": turn["role"], "content": blocks})
    body["messages"] = turns
    return body


# -- what the recorded response says -------------------------------------------------------------------


def expected_from_sse(raw: str) -> dict[str, Any]:
    events = [json.loads(line[len("data: ") :]) for line in raw.splitlines() if line.startswith("data: ")]
    texts, thinking, tools, usage = [], [], {}, {}
    stop_reason = None
    for event in events:
        kind = event["type"]
        if kind == "message_start":
            usage.update(event["message"]["usage"])
        elif kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            tools[event["index"]] = {"id": block["id"], "name": block["name"], "json": ""}
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                texts.append(delta["text"])
            elif delta["type"] == "thinking_delta":
                thinking.append(delta["thinking"])
            elif delta["type"] == "input_json_delta":
                tools[event["index"]]["json"] += delta["partial_json"]
        elif kind == "message_delta":
            stop_reason = event["delta"]["stop_reason"]
            usage.update({key: value for key, value in event["usage"].items() if value is not None})
    return {
        "text": "".join(texts),
        "thinking": "".join(thinking),
        "tools": [
            (tool["id"], tool["name"], json.loads(tool["json"] or "{}")) for _, tool in sorted(tools.items())
        ],
        "stop_reason": stop_reason,
        "usage": usage,
    }


def expected_from_json(body: dict[str, Any]) -> dict[str, Any]:
    blocks = body["content"]
    return {
        "text": "".join(block["text"] for block in blocks if block["type"] == "text"),
        "thinking": "",
        "tools": [
            (block["id"], block["name"], block["input"]) for block in blocks if block["type"] == "tool_use"
        ],
        "stop_reason": body["stop_reason"],
        "usage": body["usage"],
    }


def check_response(response: dict[str, Any], expected: dict[str, Any]) -> None:
    [choice] = response["choices"]
    message = choice["message"]
    assert (message["content"] or "") == expected["text"]
    assert (message.get("reasoning_content") or "") == expected["thinking"]
    calls = message.get("tool_calls") or []
    assert [
        (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])) for call in calls
    ] == expected["tools"]
    assert all(call["type"] == "function" for call in calls)
    assert choice["finish_reason"] == FINISH[expected["stop_reason"]]
    usage, recorded_usage = response["usage"], expected["usage"]
    written = recorded_usage.get("cache_creation_input_tokens") or 0
    read = recorded_usage.get("cache_read_input_tokens") or 0
    assert usage["prompt_tokens"] == recorded_usage["input_tokens"] + written + read
    assert usage["completion_tokens"] == recorded_usage["output_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage.get("prompt_tokens_details", {}).get("cached_tokens", 0) == read
    assert usage.get("cache_creation_input_tokens", 0) == written


# -- replay --------------------------------------------------------------------------------------------


def replay_call(name: str) -> tuple[UpstreamCall, list[httpx.Request], dict[str, Any]]:
    upstream_request = recorded(f"{name}.request.json")
    body = upstream_request["body"]
    sse = FOLDER / f"{name}.response.sse"
    if sse.exists():
        content, status, content_type = sse.read_bytes(), 200, "text/event-stream; charset=utf-8"
    else:
        response = recorded(f"{name}.response.json")
        content, status = json.dumps(response["body"]).encode(), response["_status"]
        content_type = response["_content_type"]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    request = ChatCompletionRequest.model_validate(
        {"model": body["model"], "stream": bool(body.get("stream")), **openai_requests()[name]}
    )
    call = UpstreamCall(
        request=request,
        model=body["model"],
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        request_id="replay",
        stream=bool(body.get("stream")),
    )
    return call, seen, upstream_request


PROVIDER = AnthropicProvider(
    "anthropic", AnthropicSettings.model_validate({"api_key": "sk-ant-replay-000000000"})
)


@pytest.mark.parametrize("name", CASES)
async def test_replay(name: str) -> None:
    call, seen, upstream_request = replay_call(name)
    recorded_body = upstream_request["body"]
    expected_error = name.startswith("pydantic-ai_error_")
    if call.stream:
        chunks = [chunk async for chunk in PROVIDER.stream(call)]
        check_chunks(chunks)
        assembler = StreamAssembler()
        for chunk in chunks:
            assembler.add(chunk)
        response = assembler.response()
        expected = expected_from_sse((FOLDER / f"{name}.response.sse").read_text())
    elif expected_error:
        with pytest.raises(GatewayError) as caught:
            await PROVIDER.complete(call)
        recorded_error = recorded(f"{name}.response.json")
        check_error(caught.value, recorded_error["_status"], recorded_error["body"])
        response = None
    else:
        result = await PROVIDER.complete(call)
        response = result.response
        expected = expected_from_json(recorded(f"{name}.response.json")["body"])
        assert result.usage is not None and result.usage.to_openai() == response["usage"]
        assert response["id"] == recorded(f"{name}.response.json")["body"]["id"]
    [sent] = seen
    assert sent.url.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == upstream_request["headers"].get(
        "anthropic-version", "2023-06-01"
    )
    assert meaning(json.loads(sent.content)) == meaning(recorded_body)
    if response is not None:
        check_response(response, expected)


def check_chunks(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"].startswith("msg_") and chunk["model"].startswith("claude-")
        assert isinstance(chunk["created"], int)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finishes = [chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"]]
    assert len(finishes) == 1 and finishes[0]["choices"][0]["delta"] == {}
    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and chunks[-1]["choices"] == []
    # tool calls are numbered 0, 1, ... whatever Anthropic's block index (text blocks count there)
    opened = [
        call["index"]
        for chunk in chunks
        if chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls", ())
        if "id" in call
    ]
    assert opened == list(range(len(opened)))


def check_error(error: GatewayError, status: int, body: dict[str, Any]) -> None:
    assert error.status_code == status
    assert error.error_type == body["error"]["type"]
    assert error.message == body["error"]["message"]
    envelope = error.to_dict()
    assert set(envelope["error"]) == {"message", "type", "param", "code"}


def test_error_responses() -> None:
    for name in ("pydantic-ai_error_400_invalid_request", "pydantic-ai_error_404_not_found_count_tokens"):
        response = recorded(f"{name}.response.json")
        error = error_from_anthropic(
            response["_status"], httpx.Headers(), json.dumps(response["body"]).encode(), "anthropic"
        )
        check_error(error, response["_status"], response["body"])


async def test_synthetic_stream_error_event() -> None:
    raw = (FOLDER / "SYNTHETIC_sdk-test_stream_error_event.sse").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    request = ChatCompletionRequest.model_validate(
        {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]}
    )
    call = UpstreamCall(
        request=request,
        model="claude-haiku-4-5",
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        request_id="replay",
        stream=True,
    )
    with pytest.raises(GatewayError) as caught:
        async for _ in PROVIDER.stream(call):
            pass
    assert caught.value.status_code == 503
    assert caught.value.error_type == "overloaded_error"
    assert "Overloaded" in caught.value.message


def test_spot_checks() -> None:
    """A few recorded facts stated outright, so the generic checks above cannot both be wrong."""
    streamed = expected_from_sse((FOLDER / "openllmetry_tools_streaming.response.sse").read_text())
    assert [tool[1:] for tool in streamed["tools"]] == [
        ("get_weather", {"location": "San Francisco, CA", "unit": "celsius"}),
        ("get_time", {"timezone": "America/Los_Angeles"}),
    ]
    parallel = expected_from_sse((FOLDER / "llm-anthropic_test_tools.0.response.sse").read_text())
    assert [tool[2] for tool in parallel["tools"]] == [{}, {}]
