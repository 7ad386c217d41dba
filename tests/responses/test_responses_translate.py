"""Responses API translation units: request -> chat request, chat completion -> Response, chat chunks
-> Responses stream events. Shapes are checked with the openai SDK's own models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from rec_llm_gateway.errors import BadGatewayError, InvalidRequestError
from rec_llm_gateway.responses.events import EventWriter, sse_frame
from rec_llm_gateway.responses.objects import (
    response_from_completion,
    skeleton,
    usage_from_responses,
)
from rec_llm_gateway.responses.stream import ResponsesEncoder
from rec_llm_gateway.responses.to_chat import to_chat_request
from rec_llm_gateway.responses.wire import ResponsesRequest
from rec_llm_gateway.translate import Reply
from rec_llm_gateway.translate.openai_chunks import read_chunk
from rec_llm_gateway.usage import TokenUsage

EVENT = TypeAdapter(ResponseStreamEvent)


def request(**fields: Any) -> ResponsesRequest:
    return ResponsesRequest.from_json(json.dumps({"model": "m", **fields}).encode())


def chat(fields: dict[str, Any], history: list[dict[str, Any]] = (), **options: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return to_chat_request(request(**fields), history, **options).request.to_payload()


# -- request translation ---------------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    payload = chat({"input": "hi", "instructions": "be brief", "max_output_tokens": 50, "temperature": 0.2})
    assert payload["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert payload["max_completion_tokens"] == 50
    assert payload["temperature"] == 0.2
    assert "stream" not in payload


def test_items_become_messages_with_tool_calls() -> None:
    items = [
        {"role": "developer", "content": "dev rules"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
    ]
    messages = chat({"input": items})["messages"]
    assert messages[0] == {"role": "developer", "content": "dev rules"}
    assert messages[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
    ]
    assert messages[2]["role"] == "assistant" and messages[2]["content"] == "calling"
    assert [call["id"] for call in messages[2]["tool_calls"]] == ["c1", "c2"]
    assert messages[2]["tool_calls"][1]["function"] == {"name": "g", "arguments": '{"a":1}'}
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_image_in_tool_output_follows_the_tool_turn() -> None:
    items = [
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}],
        },
    ]
    messages = chat({"input": items})["messages"]
    assert [message["role"] for message in messages] == ["assistant", "tool", "user"]
    assert messages[2]["content"][0]["image_url"]["url"].startswith("data:image/png")


def test_history_comes_first_and_its_calls_can_be_answered() -> None:
    history = [
        {"type": "message", "role": "user", "content": "weather?"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},  # a native upstream's item
        {"type": "function_call", "call_id": "c9", "name": "weather", "arguments": "{}", "id": "fc_1"},
    ]
    messages = chat(
        {
            "input": [{"type": "function_call_output", "call_id": "c9", "output": "sunny"}],
            "instructions": "new",
        },
        history,
    )["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "tool"]


def test_tool_output_for_a_call_that_does_not_exist() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]})
    assert caught.value.param == "input[0].call_id"
    assert "No tool call found" in caught.value.message


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"type": "web_search_call", "id": "ws"}], "input[0].type"),
        ([{"type": "function_call", "call_id": "c", "name": "f"}], "input[0].arguments"),
        ([{"role": "user", "content": [{"type": "input_video", "url": "x"}]}], "input[0].content[0]"),
        ([{"content": "no role or type"}], "input[0].type"),
        (
            [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}],
            "input[0].content[0].image_url",
        ),
    ],
)
def test_bad_items_are_named(items: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat({"input": items})
    assert caught.value.param is not None and caught.value.param.startswith(param)
    assert caught.value.status_code == 400


def test_builtin_tools_are_dropped_or_refused() -> None:
    tools = [
        {"type": "web_search"},
        {
            "type": "function",
            "name": "f",
            "description": "d",
            "parameters": {"type": "object"},
            "strict": True,
        },
    ]
    translation = to_chat_request(request(input="x", tools=tools, tool_choice="required"), provider="p")
    assert translation.dropped_tools == ["web_search"]
    payload = translation.request.to_payload()
    assert payload["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
        }
    ]
    assert payload["tool_choice"] == "required"
    with pytest.raises(InvalidRequestError) as caught:
        to_chat_request(request(input="x", tools=tools), builtin_tools="reject", provider="p")
    assert caught.value.param == "tools[0].type" and caught.value.code == "unsupported_tool"


def test_only_builtin_tools_leave_no_tools_and_no_choice() -> None:
    payload = chat({"input": "x", "tools": [{"type": "web_search_preview"}], "tool_choice": "auto"})
    assert "tools" not in payload and "tool_choice" not in payload


def test_named_tool_choice_and_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    payload = chat(
        {
            "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": {}}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "stream": True,
            "store": False,
            "metadata": {"k": "v"},
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "abc",
        }
    )
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema, "strict": True},
    }
    assert payload["reasoning_effort"] == "low"
    assert payload["stream"] is True and payload["stream_options"] == {"include_usage": True}
    for gone in ("store", "metadata", "include", "prompt_cache_key", "text", "reasoning"):
        assert gone not in payload


def test_bad_tool_choice_and_format() -> None:
    with pytest.raises(InvalidRequestError):
        chat({"input": "x", "tool_choice": "sometimes"})
    with pytest.raises(InvalidRequestError) as caught:
        chat({"input": "x", "text": {"format": {"type": "xml"}}})
    assert caught.value.param == "text.format.type"


def test_request_needs_input_or_previous_response() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        ResponsesRequest.from_json(b'{"model": "m"}')
    assert caught.value.param == "input"
    assert ResponsesRequest.from_json(b'{"model": "m", "previous_response_id": "resp_1"}').input_items() == []


# -- chat completion -> Response --------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }


def test_completion_becomes_a_response() -> None:
    usage = TokenUsage(
        prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=2, reasoning_tokens=1
    )
    req = request(input="x", tools=[{"type": "function", "name": "f", "parameters": {}}])
    response = response_from_completion(
        completion(
            {
                "content": "Let me check.",
                "reasoning_content": "hmm",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "sig"}},
                    }
                ],
            },
            "tool_calls",
        ),
        skeleton(req, "resp_1", "m"),
        usage,
    )
    parsed = Response.model_validate(response)
    assert parsed.status == "completed" and parsed.model == "upstream-model"
    assert [item.type for item in parsed.output] == ["reasoning", "message", "function_call"]
    assert parsed.output_text == "Let me check."
    call = response["output"][2]
    assert call["call_id"] == "call_1" and call["extra_content"] == {"google": {"thought_signature": "sig"}}
    assert response["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 15,
    }
    assert usage_from_responses(response["usage"]) == usage


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_off_completion_is_incomplete(finish: str, reason: str) -> None:
    response = response_from_completion(
        completion({"content": "par"}, finish), skeleton(request(input="x"), "r", "m"), None
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": reason}
    assert response["output"][0]["status"] == "incomplete"
    Response.model_validate(response)


def test_function_call_item_round_trips_into_the_next_request() -> None:
    response = response_from_completion(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "sig"}},
                    }
                ],
            },
            "tool_calls",
        ),
        skeleton(request(input="x"), "r", "m"),
        None,
    )
    history = [{"type": "message", "role": "user", "content": "x"}, *response["output"]]
    payload = chat({"input": [{"type": "function_call_output", "call_id": "c1", "output": "ok"}]}, history)
    call = payload["messages"][1]["tool_calls"][0]
    assert call["extra_content"] == {"google": {"thought_signature": "sig"}}


# -- chat chunks -> stream events -------------------------------------------------------------------


def feed(writer: EventWriter, reply: Reply, item: dict[str, Any]) -> list[dict[str, Any]]:
    read_chunk(reply, item)  # the way the flow reads a provider's chunks: through the shared core
    return writer.take()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "up", "choices": choices, **extra}


def run(
    chunks: list[dict[str, Any]], usage: TokenUsage | None = None
) -> tuple[EventWriter, list[dict[str, Any]]]:
    writer = EventWriter(skeleton(request(input="x"), "resp_1", "m"))
    reply = Reply(writer)
    events = [event for item in chunks for event in feed(writer, reply, item)]
    events += writer.complete(usage)
    for event in events:
        EVENT.validate_python(event)  # every event is one the SDK knows, with its required fields
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return writer, events


def test_text_stream_events() -> None:
    usage = TokenUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    writer, events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        ],
        usage,
    )
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert events[6]["text"] == "Hello"
    final = Response.model_validate(events[-1]["response"])
    assert final.output_text == "Hello" and final.status == "completed" and final.model == "up"
    assert final.usage is not None and final.usage.total_tokens == 5
    assert writer.token_usage == usage
    assert sse_frame(events[4]).startswith(b"event: response.output_text.delta\ndata: {")


def test_reasoning_then_tool_calls_stream() -> None:
    _, events = run(
        [
            chunk({"role": "assistant"}),
            chunk({"reasoning_content": "think"}),
            chunk({"reasoning_content": "ing"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            chunk(
                {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}]}
            ),
            chunk({}, "tool_calls"),
        ]
    )
    kinds = [event["type"] for event in events]
    assert kinds.count("response.output_item.added") == 3 and kinds.count("response.output_item.done") == 3
    assert "response.reasoning_summary_text.delta" in kinds
    done = [event for event in events if event["type"] == "response.function_call_arguments.done"]
    assert [(event["name"], event["arguments"]) for event in done] == [("f", '{"x":1}'), ("g", "{}")]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "function_call", "function_call"]
    assert final["output"][0]["summary"][0]["text"] == "thinking"
    assert [item["call_id"] for item in final["output"][1:]] == ["call_a", "call_b"]


def test_length_makes_the_stream_incomplete() -> None:
    _, events = run([chunk({"content": "abc"}), chunk({}, "length")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_refusal_stream() -> None:
    _, events = run([chunk({"content": "I "}), chunk({"refusal": "can't"}), chunk({}, "stop")])
    parts = events[-1]["response"]["output"][0]["content"]
    assert parts[0]["text"] == "I " and parts[1] == {"type": "refusal", "refusal": "can't"}


def test_failure_mid_stream() -> None:
    writer = EventWriter(skeleton(request(input="x"), "resp_1", "m"))
    reply = Reply(writer)
    encoder = ResponsesEncoder()
    for event in [
        *feed(writer, reply, chunk({"content": "partial"})),
        *feed(writer, reply, chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]})),
    ]:
        encoder.feed(event)
    frames = (
        encoder.fail(BadGatewayError("upstream broke", code="upstream_stream_truncated"))
        .decode()
        .split("\n\n")
    )
    events = [json.loads(frame.split("data: ", 1)[1]) for frame in frames if frame]
    for event in events:
        EVENT.validate_python(event)
    assert [event["type"] for event in events] == ["error", "response.failed"]
    assert events[0]["code"] == "upstream_stream_truncated"
    assert [event["sequence_number"] for event in events] == [writer._sequence, writer._sequence + 1]
    failed = events[1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "server_error",
        "message": "upstream broke",
    }
    assert [item["type"] for item in failed["output"]] == ["message"]  # the finished item only
