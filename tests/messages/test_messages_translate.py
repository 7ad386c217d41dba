"""Unit tests of the /v1/messages translation: Anthropic request -> OpenAI chat request, OpenAI
completion -> Anthropic message, OpenAI chunks -> Anthropic events (pure functions, no sockets)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message

from rec_llm_gateway.errors import BadGatewayError, GatewayError, InvalidRequestError, RateLimitError
from rec_llm_gateway.messages.events import EventWriter, sse_frame
from rec_llm_gateway.messages.from_chat import STOP_REASONS, from_chat
from rec_llm_gateway.messages.params import fit_to_model, reasoning_effort_for
from rec_llm_gateway.messages.to_chat import to_chat
from rec_llm_gateway.messages.wire import MessagesRequest, error_body
from rec_llm_gateway.usage import TokenUsage


def request(**body: Any) -> MessagesRequest:
    body.setdefault("model", "gpt-4o")
    body.setdefault("max_tokens", 100)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return MessagesRequest.from_json(json.dumps(body).encode())


def chat(**body: Any) -> dict[str, Any]:
    return to_chat(request(**body)).to_payload()


# -- requests ---------------------------------------------------------------------------------------


def test_plain_request() -> None:
    payload = chat(system="Be brief.", temperature=0.2, top_p=0.9, stop_sequences=["END"])
    assert payload == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
    }


def test_stream_asks_for_usage_and_user_id_becomes_user() -> None:
    payload = chat(stream=True, metadata={"user_id": "u-1"})
    assert payload["stream"] is True
    assert payload["stream_options"] == {"include_usage": True}
    assert payload["user"] == "u-1"


def test_system_blocks_lose_cache_control_and_stay_parts() -> None:
    system = [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be careful."},
    ]
    payload = chat(system=system)
    assert payload["messages"][0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be careful."},
        ],
    }
    one = chat(system=[{"type": "text", "text": "Only.", "cache_control": {"type": "ephemeral"}}])
    assert one["messages"][0] == {"role": "system", "content": "Only."}


def test_tool_round_trip_over_several_turns() -> None:
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]
    messages = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "rain"}],
                    "is_error": True,
                },
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    payload = chat(
        messages=messages, tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True}
    )
    assert payload["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object"}, "description": "Weather"},
        }
    ]
    assert payload["tool_choice"] == "required"
    assert payload["parallel_tool_calls"] is False
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assistant = payload["messages"][1]
    assert assistant["content"] == "Checking."
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert payload["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
    assert payload["messages"][3]["content"] == "Error: rain"
    assert payload["messages"][4] == {"role": "user", "content": "and tomorrow?"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    assert chat(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_images_documents_and_tool_result_images() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {
            "type": "document",
            "title": "notes",
            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
        },
        {"type": "text", "text": "describe"},
    ]
    parts = chat(messages=[{"role": "user", "content": content}])["messages"][0]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "document.pdf"},
        },
        {"type": "text", "text": "notes\n\nx"},
        {"type": "text", "text": "describe"},
    ]
    screenshot = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    messages = [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screen", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "ok"}, screenshot],
                }
            ],
        },
    ]
    translated = chat(messages=messages, tools=[{"name": "screen", "input_schema": {"type": "object"}}])
    assert translated["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    assert translated["messages"][3] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
    }


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (2048, "low"), (8192, "medium"), (10000, "medium"), (31999, "high")]
)
def test_thinking_budget_becomes_reasoning_effort(budget: int, effort: str) -> None:
    assert reasoning_effort_for({"type": "enabled", "budget_tokens": budget}) == effort
    assert chat(thinking={"type": "enabled", "budget_tokens": budget})["reasoning_effort"] == effort


def test_thinking_off_or_adaptive_sets_no_effort() -> None:
    assert "reasoning_effort" not in chat(thinking={"type": "disabled"})
    assert "reasoning_effort" not in chat(thinking={"type": "adaptive"})


def test_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    payload = chat(output_config={"effort": "max", "format": {"type": "json_schema", "schema": schema}})
    assert payload["reasoning_effort"] == "high"
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def test_dropped_fields_do_not_travel() -> None:
    payload = chat(top_k=5, service_tier="auto", cache_control={"type": "ephemeral"}, inference_geo="us")
    assert not {"top_k", "service_tier", "cache_control", "inference_geo"} & set(payload)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "server_tool_use", "id": "x"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}}]}
                ]
            },
            "messages[0].content[0].source.type",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"tool_choice": {"type": "sometimes"}, "tools": [{"name": "f"}]}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": "many"}}, "thinking.budget_tokens"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].tool_use_id",
        ),
    ],
)
def test_untranslatable_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        chat(**body)
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": "many"}, "max_tokens"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"model": ""}, "model"),
    ],
)
def test_validation_names_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        request(**body)
    assert raised.value.param == param


# -- answers ----------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }


def test_completion_becomes_a_message_the_sdk_reads() -> None:
    usage = TokenUsage(prompt_tokens=30, completion_tokens=7, total_tokens=37, cached_tokens=20)
    answer = completion(
        {
            "content": "Checking.",
            "reasoning_content": "hmm",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        "tool_calls",
    )
    message = from_chat(answer, usage, "gpt-4o")
    parsed = Message.model_validate(message)
    assert [block.type for block in parsed.content] == ["thinking", "text", "tool_use"]
    assert parsed.content[2].input == {"a": 1}  # type: ignore[union-attr]
    assert parsed.stop_reason == "tool_use"
    assert parsed.usage.input_tokens == 10
    assert parsed.usage.cache_read_input_tokens == 20
    assert parsed.usage.output_tokens == 7


def test_stop_reasons_are_the_provider_table_backwards() -> None:
    assert STOP_REASONS == {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
    }


def test_tool_arguments_that_are_not_an_object_are_a_502() -> None:
    answer = completion(
        {"content": None, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1"}}]},
        "tool_calls",
    )
    with pytest.raises(BadGatewayError):
        from_chat(answer, None, "gpt-4o")


def test_error_envelope() -> None:
    assert error_body(RateLimitError("slow down"), "req_1") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
        "request_id": "req_1",
    }
    assert error_body(GatewayError("boom", status_code=502))["error"]["type"] == "api_error"
    assert error_body(GatewayError("busy", status_code=503))["error"]["type"] == "overloaded_error"
    kept = GatewayError("x", status_code=502, error_type="overloaded_error")
    assert error_body(kept)["error"]["type"] == "overloaded_error"


# -- streams ----------------------------------------------------------------------------------------


def events_of(data: bytes) -> list[dict[str, Any]]:
    """Parse SSE bytes, checking that each ``event:`` name matches its data's type."""
    events = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        event = json.loads(data_line[6:])
        assert event["type"] == name_line[7:]
        events.append(event)
    return events


def accumulate(events: list[dict[str, Any]]) -> Message:
    """The message the real SDK's stream helper assembles from ``events`` (over a mock transport)."""
    body = b"".join(sse_frame(event) for event in events)

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = anthropic.Anthropic(
        api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(answer))
    )
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        return stream.get_final_message()


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def run(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    writer = EventWriter("requested-model")
    data = b"".join(writer.feed(c) for c in chunks) + writer.finish()
    return events_of(data)


def test_stream_blocks_never_mix_kinds() -> None:
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "think "}),
            chunk({"reasoning_content": "more"}),
            chunk({"content": "Hello"}),
            chunk({"content": " there"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
            {"id": "chatcmpl-s", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}},
        ]
    )
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    open_blocks: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            assert event["index"] == len(open_blocks)  # indexes count up from 0, each once
            open_blocks[event["index"]] = event["content_block"]["type"]
        elif event["type"] == "content_block_delta":
            expected = {"thinking": "thinking_delta", "text": "text_delta", "tool_use": "input_json_delta"}
            assert event["delta"]["type"] == expected[open_blocks[event["index"]]]
    assert open_blocks == {0: "thinking", 1: "text", 2: "tool_use", 3: "tool_use"}
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    message = accumulate(events)
    assert message.content[0].thinking == "think more"  # type: ignore[union-attr]
    assert message.content[1].text == "Hello there"  # type: ignore[union-attr]
    assert message.content[2].input == {"a": 1}  # type: ignore[union-attr]
    assert message.content[3].input == {}  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 9)


def test_reasoning_after_text_opens_a_new_block() -> None:
    events = run(
        [
            chunk({"content": "a"}),
            chunk({"reasoning_content": "b"}),
            chunk({"content": "c"}),
            chunk({}, "stop"),
        ]
    )
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["text", "thinking", "text"]
    assert accumulate(events).stop_reason == "end_turn"


def test_empty_answer_is_a_valid_message() -> None:
    message = accumulate(run([chunk({"role": "assistant"}), chunk({}, "length")]))
    assert message.content == [] and message.stop_reason == "max_tokens"


def test_stream_without_finish_is_truncated() -> None:
    writer = EventWriter("m")
    writer.feed(chunk({"content": "a"}))
    with pytest.raises(BadGatewayError):
        writer.finish()


def test_interleaved_tool_fragments_are_refused() -> None:
    writer = EventWriter("m")
    writer.feed(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}))
    writer.feed(chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}))
    with pytest.raises(BadGatewayError):
        writer.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}))


def test_error_event() -> None:
    (event,) = events_of(EventWriter("m").error(GatewayError("gone", status_code=502), "req_9"))
    assert event == {
        "type": "error",
        "error": {"type": "api_error", "message": "gone"},
        "request_id": "req_9",
    }


def test_claude_code_shapes() -> None:
    """What Claude Code sends: a system turn mid-conversation, a JSON user id, adaptive thinking."""
    user_id = json.dumps({"device_id": "d" * 64, "session_id": "s"})
    payload = chat(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "system", "content": "Available agent types: ..."},
        ],
        metadata={"user_id": user_id},
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        context_management={"edits": []},
    )
    assert payload["messages"] == [
        {"role": "user", "content": "say hi"},
        {"role": "system", "content": "Available agent types: ..."},
    ]
    assert payload["user"].startswith("sha256:") and len(payload["user"]) <= 64
    assert payload["reasoning_effort"] == "high"
    assert "context_management" not in payload


def test_fit_to_model_uses_the_catalog() -> None:
    translated = to_chat(request(max_tokens=64000, output_config={"effort": "high"}))
    fitted = fit_to_model(translated, "openai", "gpt-4o")
    payload = fitted.to_payload()
    assert payload["max_completion_tokens"] == 16384  # gpt-4o's max output
    assert "reasoning_effort" not in payload
    assert translated.to_payload()["max_completion_tokens"] == 64000  # the original is untouched
    reasoning = fit_to_model(translated, "openai", "o3")
    assert reasoning.to_payload()["reasoning_effort"] == "high"
    assert fit_to_model(translated, "openai", "my-local-model") is translated
