"""Converse answers -> OpenAI: complete responses, stream events, stop reasons, usage, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rec_llm_gateway.errors import BadGatewayError, GatewayError, RateLimitError, UpstreamError
from rec_llm_gateway.providers.bedrock.eventstream import EventStreamDecoder, encode_frame
from rec_llm_gateway.providers.bedrock.response import finish_reason, parse_converse_response, usage_from
from rec_llm_gateway.providers.bedrock.stream import ConverseStreamTranslator
from rec_llm_gateway.streaming import StreamAssembler

from ..bedrock_support import converse, event, exception_frame, text_frames, tool_frames


def parse(data: dict[str, Any], json_tool: str | None = None) -> dict[str, Any]:
    result = parse_converse_response(
        data, model="m1", response_id="chatcmpl-x", created=1, json_tool=json_tool
    )
    return result.response


def translate(
    frames: list[bytes], json_tool: str | None = None
) -> tuple[list[dict[str, Any]], ConverseStreamTranslator]:
    translator = ConverseStreamTranslator(
        model="m1", response_id="chatcmpl-s", created=1, json_tool=json_tool, provider="bedrock"
    )
    chunks: list[dict[str, Any]] = []
    for frame in EventStreamDecoder().feed(b"".join(frames)):
        chunks += translator.feed(frame)
        if translator.done:
            break
    chunks += translator.finish()
    return chunks, translator


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.response()


def test_text_response() -> None:
    response = parse(converse([{"text": "Hello"}, {"text": " there"}], prompt=7, completion=2))
    assert response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert response["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert (response["id"], response["object"], response["model"]) == ("chatcmpl-x", "chat.completion", "m1")


def test_tool_use_and_reasoning() -> None:
    content = [
        {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "sig"}}},
        {
            "toolUse": {
                "toolUseId": "tooluse_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
                "type": "tool_use",
            }
        },
        {"toolUse": {"toolUseId": "tooluse_2", "name": "get_time", "input": {}}},
    ]
    message = parse(converse(content, "tool_use"))["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None
    assert message["message"]["reasoning_content"] == "Need weather."
    assert message["message"]["tool_calls"] == [
        {
            "id": "tooluse_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "tooluse_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]


def test_the_response_format_tool_becomes_content() -> None:
    content = [
        {"text": "Here:"},
        {"toolUse": {"toolUseId": "t", "name": "answer", "input": {"answer": "42"}}},
    ]
    choice = parse(converse(content, "tool_use"), json_tool="answer")["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) == {"answer": "42"}
    assert "tool_calls" not in choice["message"]


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("some_future_reason", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons(stop: Any, expected: str) -> None:
    assert finish_reason(stop) == expected


@pytest.mark.parametrize("stop", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_output_is_a_502(stop: str) -> None:
    with pytest.raises(BadGatewayError) as caught:
        parse(converse([{"text": "{"}], stop))
    assert caught.value.status_code == 502 and caught.value.code == stop


def test_usage_counts_cached_input_as_prompt_tokens() -> None:
    usage = usage_from(
        {
            "inputTokens": 100,
            "outputTokens": 10,
            "totalTokens": 510,
            "cacheReadInputTokens": 300,
            "cacheWriteInputTokens": 100,
        }
    )
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (500, 10, 510)
    assert (usage.cached_tokens, usage.cache_write_tokens) == (300, 100)
    assert usage.to_openai()["prompt_tokens_details"] == {"cached_tokens": 300}
    assert usage_from(None) is None
    # a totalTokens that leaves the cache out is corrected
    assert (
        usage_from(
            {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2, "cacheReadInputTokens": 5}
        ).total_tokens
        == 7
    )


def test_not_a_json_object() -> None:
    with pytest.raises(BadGatewayError):
        parse_converse_response([], model="m", response_id="i", created=1, json_tool=None)


# -- streams --------------------------------------------------------------------------------------


def test_text_stream() -> None:
    chunks, translator = translate(text_frames(["Hello", " world"]))
    assert translator.done
    assert [c["choices"][0]["delta"] if c["choices"] else "usage" for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " world"},
        {},
        "usage",
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1] == {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m1",
        "choices": [],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-s" for c in chunks)


def test_tool_stream_indexes_tools_by_ordinal() -> None:
    chunks, _ = translate(
        tool_frames([("t1", "get_weather", '{"city": "Paris"}'), ("t2", "get_time", '{"tz": "CET"}')])
    )
    response = assemble(chunks)
    message = response["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ] == [
        ("t1", "get_weather", {"city": "Paris"}),
        ("t2", "get_time", {"tz": "CET"}),
    ]
    assert response["choices"][0]["finish_reason"] == "tool_calls"
    starts = [
        c
        for c in chunks
        if c["choices"]
        and "tool_calls" in c["choices"][0]["delta"]
        and "id" in c["choices"][0]["delta"]["tool_calls"][0]
    ]
    assert [s["choices"][0]["delta"]["tool_calls"][0]["index"] for s in starts] == [0, 1]
    assert response["usage"]["total_tokens"] == 50


def test_response_format_tool_streams_as_content() -> None:
    chunks, _ = translate(tool_frames([("t1", "answer", '{"answer": "42"}')], text=""), json_tool="answer")
    response = assemble(chunks)
    assert json.loads(response["choices"][0]["message"]["content"]) == {"answer": "42"}
    assert "tool_calls" not in response["choices"][0]["message"]
    assert response["choices"][0]["finish_reason"] == "stop"


def test_reasoning_stream_and_unknown_events() -> None:
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm."}}}),
        event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "abc"}}}
        ),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"citation": {"title": "x"}}}),
        event("someFutureEvent", {"x": 1}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Done."}}),
        event("messageStop", {"stopReason": "max_tokens"}),
        event(
            "metadata",
            {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"latencyMs": 1}},
        ),
    ]
    response = assemble(translate(frames)[0])
    assert response["choices"][0]["message"]["reasoning_content"] == "Hmm."
    assert response["choices"][0]["message"]["content"] == "Done."
    assert response["choices"][0]["finish_reason"] == "length"


def test_usage_arrives_after_the_finish_chunk() -> None:
    chunks, _ = translate(text_frames(["a"]))
    finish_position = next(
        i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"]
    )
    usage_positions = [i for i, c in enumerate(chunks) if "usage" in c]
    assert usage_positions == [len(chunks) - 1] and finish_position == len(chunks) - 2


def test_a_stream_without_message_stop_is_a_502() -> None:
    with pytest.raises(BadGatewayError, match="before messageStop"):
        translate(text_frames(["a"])[:2])


def test_a_payload_that_is_not_json_is_a_502() -> None:
    frame = encode_frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b"{nope")
    with pytest.raises(BadGatewayError, match="not JSON"):
        translate([frame])


@pytest.mark.parametrize(
    ("kind", "status", "error_class"),
    [
        ("throttlingException", 429, RateLimitError),
        ("validationException", 400, UpstreamError),
        ("serviceUnavailableException", 503, GatewayError),
        ("internalServerException", 502, BadGatewayError),
        ("modelStreamErrorException", 502, BadGatewayError),
        ("someNewException", 502, BadGatewayError),
    ],
)
def test_in_stream_exceptions(kind: str, status: int, error_class: type[GatewayError]) -> None:
    frames = [*text_frames(["partial"])[:2], exception_frame(kind, "Something went wrong upstream")]
    with pytest.raises(error_class) as caught:
        translate(frames)
    error = caught.value
    assert error.status_code == status
    assert "Something went wrong upstream" in error.message
    if status < 500 or status == 503:
        assert error.error_type == kind[0].upper() + kind[1:]


def test_in_stream_error_message() -> None:
    frame = encode_frame(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    with pytest.raises(BadGatewayError, match="InternalFailure: boom"):
        translate([frame])


# -- HTTP errors (through the provider's parse_error) --------------------------------------------------


def bedrock_provider() -> Any:
    from rec_llm_gateway.config import ProviderConfig
    from rec_llm_gateway.providers.registry import ProviderRegistry

    return ProviderRegistry().build(
        "bedrock", ProviderConfig.model_validate({"region": "us-east-1", "api_key": "k"})
    )


@pytest.mark.parametrize(
    ("status", "error_type", "expected_status"),
    [
        (400, "ValidationException", 400),
        (403, "AccessDeniedException", 403),
        (404, "ResourceNotFoundException", 404),
    ],
)
def test_http_errors_keep_status_message_and_type(status: int, error_type: str, expected_status: int) -> None:
    headers = httpx.Headers(
        {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    )
    error = bedrock_provider().parse_error(
        status, headers, b'{"message":"The provided model identifier is invalid."}'
    )
    assert error.status_code == expected_status
    assert error.message == "The provided model identifier is invalid."
    assert error.error_type == error_type


def test_http_429_keeps_retry_after_and_5xx_is_a_502() -> None:
    provider = bedrock_provider()
    throttled = provider.parse_error(
        429,
        httpx.Headers({"x-amzn-ErrorType": "ThrottlingException", "retry-after": "7"}),
        b'{"message":"Too many requests"}',
    )
    assert isinstance(throttled, RateLimitError)
    assert throttled.headers["retry-after"] == "7"
    assert throttled.error_type == "ThrottlingException"
    failed = provider.parse_error(500, httpx.Headers(), b'{"Message":"Internal error"}')
    assert failed.status_code == 502 and "Internal error" in failed.message
    typed = provider.parse_error(
        400, httpx.Headers(), b'{"__type":"com.amazon#ValidationException","message":"bad"}'
    )
    assert typed.error_type == "ValidationException"
    garbage = provider.parse_error(400, httpx.Headers(), b"<html>nope</html>")
    assert garbage.status_code == 400 and "nope" in garbage.message
