"""Anthropic answers -> OpenAI shapes: messages, usage, errors, the stream translator, and the
provider's HTTP side over ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.errors import (
    BadGatewayError,
    ConfigError,
    GatewayError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
)
from rec_llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from rec_llm_gateway.providers.anthropic.errors import error_from_anthropic, stream_error_from_anthropic
from rec_llm_gateway.providers.anthropic.response import from_anthropic as anthropic_result
from rec_llm_gateway.providers.anthropic.response import usage_from_anthropic
from rec_llm_gateway.providers.anthropic.stream import AnthropicStreamTranslator
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.upstream_errors import upstream_status_error
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.streaming import StreamAssembler
from rec_llm_gateway.usage import TokenUsage

KEY = "sk-ant-unit-KEY-abcdef0123456789"
MODEL = "claude-haiku-4-5"


def message(*blocks: dict[str, Any], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7, **usage},
    }


def from_anthropic(data: Any, json_tool: str | None = None) -> tuple[dict[str, Any], TokenUsage | None]:
    result = anthropic_result(data, json_tool)
    return result.response, result.usage


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any], id_: str = "toolu_1") -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": arguments}


# -- complete messages ------------------------------------------------------------------------------


def test_text_blocks_are_concatenated() -> None:
    response, usage = from_anthropic(message(text("Hello, "), text("world")))
    assert response["object"] == "chat.completion"
    assert response["id"] == "msg_1" and response["model"] == "claude-haiku-4-5-20251001"
    assert isinstance(response["created"], int)
    [choice] = response["choices"]
    assert choice["message"] == {"role": "assistant", "content": "Hello, world", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert response["usage"] == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    assert usage == TokenUsage(5, 7, 12)


def test_tool_use_becomes_tool_calls() -> None:
    response, _ = from_anthropic(
        message(
            text("Checking."),
            tool_use("weather", {"city": "Zürich"}),
            tool_use("time", {}, "toolu_2"),
            stop_reason="tool_use",
        )
    )
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    calls = choice["message"]["tool_calls"]
    assert [call["id"] for call in calls] == ["toolu_1", "toolu_2"]
    assert [call["type"] for call in calls] == ["function", "function"]
    assert [json.loads(call["function"]["arguments"]) for call in calls] == [{"city": "Zürich"}, {}]
    assert [call["function"]["name"] for call in calls] == ["weather", "time"]


def test_only_tool_calls_means_null_content() -> None:
    response, _ = from_anthropic(message(tool_use("f", {"a": 1}), stop_reason="tool_use"))
    assert response["choices"][0]["message"]["content"] is None
    response, _ = from_anthropic(message())
    assert response["choices"][0]["message"]["content"] == ""


def test_json_tool_call_is_the_content() -> None:
    response, _ = from_anthropic(
        message(tool_use("json_response", {"city": "Paris"}), stop_reason="tool_use"), "json_response"
    )
    choice = response["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"city": "Paris"}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_thinking() -> None:
    thinking = {"type": "thinking", "thinking": "Let me think.", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    response, _ = from_anthropic(message(thinking, redacted, text("42")))
    reply = response["choices"][0]["message"]
    assert reply["content"] == "42"
    assert reply["reasoning_content"] == "Let me think."
    assert reply["thinking_blocks"] == [thinking, redacted]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    blocks = [tool_use("f", {})] if stop_reason == "tool_use" else [text("x")]
    response, _ = from_anthropic(message(*blocks, stop_reason=stop_reason))
    assert response["choices"][0]["finish_reason"] == finish_reason


def test_usage_with_cache() -> None:
    response, usage = from_anthropic(
        message(text("x"), cache_creation_input_tokens=100, cache_read_input_tokens=1000)
    )
    assert usage == TokenUsage(
        prompt_tokens=1105, completion_tokens=7, total_tokens=1112, cached_tokens=1000, cache_write_tokens=100
    )
    assert response["usage"]["prompt_tokens"] == 1105
    assert response["usage"]["prompt_tokens_details"] == {"cached_tokens": 1000}
    assert response["usage"]["cache_creation_input_tokens"] == 100
    # the gateway reads the usage back the same way (streams are priced from the usage chunk)
    assert TokenUsage.from_openai(response["usage"]) == usage


def test_usage_tolerates_nulls_and_absence() -> None:
    assert usage_from_anthropic(
        {"input_tokens": 3, "cache_creation_input_tokens": None, "output_tokens": 1}
    ) == (TokenUsage(3, 1, 4))
    assert usage_from_anthropic(None) is None
    data = message(text("x"))
    del data["usage"]
    response, usage = from_anthropic(data)
    assert usage is None and "usage" not in response


def test_not_a_message_is_502() -> None:
    with pytest.raises(BadGatewayError):
        from_anthropic({"hello": "world"})
    with pytest.raises(BadGatewayError):
        from_anthropic([1, 2])
    with pytest.raises(GatewayError) as caught:
        from_anthropic({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert caught.value.status_code == 503


# -- errors -------------------------------------------------------------------------------------------


def anthropic_error(error_type: str, message_: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": error_type, "message": message_}, "request_id": "r"}
    ).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "expected_status", "expected_class"),
    [
        (400, "invalid_request_error", 400, UpstreamError),
        (401, "authentication_error", 401, UpstreamError),
        (403, "permission_error", 403, UpstreamError),
        (404, "not_found_error", 404, UpstreamError),
        (413, "request_too_large", 413, UpstreamError),
        (429, "rate_limit_error", 429, RateLimitError),
        (500, "api_error", 502, BadGatewayError),
        (529, "overloaded_error", 503, ServiceUnavailableError),
    ],
)
def test_error_statuses(status: int, error_type: str, expected_status: int, expected_class: type) -> None:
    error = error_from_anthropic(
        status, httpx.Headers(), anthropic_error(error_type, "what went wrong"), "claude"
    )
    assert isinstance(error, expected_class)
    assert error.status_code == expected_status
    assert error.error_type == error_type
    assert "what went wrong" in error.message
    envelope = error.to_dict()["error"]
    assert set(envelope) == {"message", "type", "param", "code"}


def test_retry_after_is_kept() -> None:
    error = error_from_anthropic(
        429, httpx.Headers({"retry-after": "12"}), anthropic_error("rate_limit_error", "slow"), "claude"
    )
    assert error.headers["retry-after"] == "12"
    overloaded = error_from_anthropic(
        529, httpx.Headers({"retry-after": "3"}), anthropic_error("overloaded_error", "busy"), "claude"
    )
    assert overloaded.headers["retry-after"] == "3"


def test_errors_that_are_not_anthropic_json() -> None:
    error = error_from_anthropic(502, httpx.Headers(), b"<html>bad gateway</html>", "claude")
    assert error.status_code == 502 and "bad gateway" in error.message
    error = error_from_anthropic(400, httpx.Headers(), b"", "claude")
    assert error.status_code == 400 and "HTTP 400" in error.message


def test_upstream_status_error_maps_529_to_503() -> None:
    error = upstream_status_error(529, "Overloaded", provider="p", retry_after="2.5")
    assert isinstance(error, ServiceUnavailableError)
    assert error.status_code == 503 and error.error_type == "overloaded_error"
    assert error.headers["retry-after"] == "3"
    assert upstream_status_error(503, "down", provider="p").status_code == 502  # unchanged


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("overloaded_error", 503),
        ("rate_limit_error", 429),
        ("api_error", 502),
        ("invalid_request_error", 400),
        ("brand_new_error", 502),
    ],
)
def test_stream_error_types(error_type: str, status: int) -> None:
    error = stream_error_from_anthropic({"type": error_type, "message": "boom"})
    assert error.status_code == status
    assert error.error_type == error_type
    assert "boom" in error.message


# -- the stream translator ---------------------------------------------------------------------------


def make_call(**fields: Any) -> UpstreamCall:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    request = ChatCompletionRequest.model_validate({"model": MODEL, **fields})
    return UpstreamCall(request=request, model=MODEL, http=httpx.AsyncClient(), request_id="r", stream=True)


def event(kind: str, **fields: Any) -> bytes:
    # padded like Anthropic's own JSON
    return json.dumps({"type": kind, **fields}).encode()[:-1] + b"      }"


def start(**usage: int) -> bytes:
    return event(
        "message_start",
        message={
            "id": "msg_s",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 9, "output_tokens": 1, **usage},
        },
    )


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return event("content_block_start", index=index, content_block=block)


def delta(index: int, **fields: Any) -> bytes:
    return event("content_block_delta", index=index, delta=fields)


def stop(index: int) -> bytes:
    return event("content_block_stop", index=index)


def end(stop_reason: str = "end_turn", **usage: int) -> list[bytes]:
    return [
        event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None}, usage=usage),
        event("message_stop"),
    ]


def run(events: list[bytes], translator: AnthropicStreamTranslator | None = None) -> list[dict[str, Any]]:
    translator = translator or AnthropicStreamTranslator(make_call())
    chunks: list[dict[str, Any]] = []
    for data in events:
        chunks += translator.feed(data)
    assert translator.done
    chunks += translator.finish()
    return chunks


def assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.response()


def test_text_stream() -> None:
    call = make_call()
    translator = AnthropicStreamTranslator(call)
    events = [
        start(),
        block_start(0, text("")),
        event("ping"),
        delta(0, type="text_delta", text="Hel"),
        delta(0, type="text_delta", text="lo"),
        stop(0),
        *end(output_tokens=3),
    ]
    chunks = run(events, translator)
    assert call.response_model == "claude-haiku-4-5-20251001"
    for chunk in chunks:
        assert chunk["id"] == "msg_s"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "claude-haiku-4-5-20251001"
        assert isinstance(chunk["created"], int)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:-1]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"}, {}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def test_tool_call_indexes_count_tool_blocks_only() -> None:
    events = [
        start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="hmm"),
        delta(0, type="signature_delta", signature="sig"),
        stop(0),
        block_start(1, text("")),
        delta(1, type="text_delta", text="Calling."),
        stop(1),
        block_start(2, tool_use("weather", {}, "toolu_a")),
        delta(2, type="input_json_delta", partial_json=""),
        delta(2, type="input_json_delta", partial_json='{"city": '),
        delta(2, type="input_json_delta", partial_json='"Paris"}'),
        stop(2),
        block_start(3, tool_use("now", {}, "toolu_b")),
        delta(3, type="input_json_delta", partial_json=""),
        stop(3),
        *end("tool_use", output_tokens=20),
    ]
    chunks = run(events)
    tool_deltas = [
        call
        for chunk in chunks
        if chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls", ())
    ]
    assert tool_deltas == [
        {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
        {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "now", "arguments": ""}},
        {"index": 1, "function": {"arguments": "{}"}},  # no fragment: "{}" keeps it valid JSON
    ]
    response = assembled(chunks)
    message_ = response["choices"][0]["message"]
    assert message_["content"] == "Calling."
    assert message_["reasoning_content"] == "hmm"
    assert [json.loads(call["function"]["arguments"]) for call in message_["tool_calls"]] == [
        {"city": "Paris"},
        {},
    ]
    assert response["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_block_that_starts_with_its_input() -> None:
    chunks = run([start(), block_start(0, tool_use("f", {"a": 1})), stop(0), *end("tool_use")])
    [call] = assembled(chunks)["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"a": 1}


def test_usage_from_newer_message_delta_wins() -> None:
    events = [
        start(cache_read_input_tokens=0),
        block_start(0, text("")),
        delta(0, type="text_delta", text="x"),
        stop(0),
        *end(input_tokens=9, cache_creation_input_tokens=50, cache_read_input_tokens=400, output_tokens=12),
    ]
    usage = run(events)[-1]["usage"]
    assert usage == {
        "prompt_tokens": 459,
        "completion_tokens": 12,
        "total_tokens": 471,
        "prompt_tokens_details": {"cached_tokens": 400},
        "cache_creation_input_tokens": 50,
    }
    assert TokenUsage.from_openai(usage) == TokenUsage(459, 12, 471, cached_tokens=400, cache_write_tokens=50)


def test_usage_from_older_message_delta_keeps_the_input() -> None:
    usage = run([start(cache_creation_input_tokens=6), *end(output_tokens=30)])[-1]["usage"]
    assert usage["prompt_tokens"] == 15 and usage["completion_tokens"] == 30


def test_one_usage_chunk_and_finish_even_without_message_delta() -> None:
    chunks = run(
        [
            start(),
            block_start(0, text("")),
            delta(0, type="text_delta", text="x"),
            stop(0),
            event("message_stop"),
        ]
    )
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks if chunk["choices"]][-1] == "stop"
    assert sum(1 for chunk in chunks if "usage" in chunk) == 1


def test_max_tokens_and_json_tool_streams() -> None:
    assert run([start(), *end("max_tokens")])[-2]["choices"][0]["finish_reason"] == "length"
    translator = AnthropicStreamTranslator(make_call(), "json_response")
    events = [
        start(),
        block_start(0, tool_use("json_response", {})),
        delta(0, type="input_json_delta", partial_json='{"a"'),
        delta(0, type="input_json_delta", partial_json=": 1}"),
        stop(0),
        *end("tool_use"),
    ]
    response = assembled(run(events, translator))
    assert json.loads(response["choices"][0]["message"]["content"]) == {"a": 1}
    assert "tool_calls" not in response["choices"][0]["message"]
    assert response["choices"][0]["finish_reason"] == "stop"


def test_empty_json_tool_input_is_an_empty_object() -> None:
    translator = AnthropicStreamTranslator(make_call(), "json_response")
    chunks = run(
        [start(), block_start(0, tool_use("json_response", {})), stop(0), *end("tool_use")], translator
    )
    assert assembled(chunks)["choices"][0]["message"]["content"] == "{}"


def test_unknown_events_and_blocks_are_ignored() -> None:
    events = [
        start(),
        event("brand_new_event", anything=1),
        block_start(0, {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}),
        delta(0, type="citations_delta", citation={}),
        stop(0),
        *end(),
    ]
    chunks = run(events)
    assert [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]] == [
        {"role": "assistant", "content": ""},
        {},
    ]


def test_error_event_raises() -> None:
    translator = AnthropicStreamTranslator(make_call())
    translator.feed(start())
    with pytest.raises(GatewayError) as caught:
        translator.feed(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    assert caught.value.status_code == 503 and caught.value.error_type == "overloaded_error"


@pytest.mark.parametrize("data", [b"not json", b'{"type": "content_block_delta"}', b"[1]", b'{"no": "type"}'])
def test_unreadable_events_are_502(data: bytes) -> None:
    with pytest.raises(BadGatewayError):
        AnthropicStreamTranslator(make_call()).feed(data)


def test_a_stream_cut_before_the_end_is_an_error() -> None:
    translator = AnthropicStreamTranslator(make_call())
    translator.feed(start())
    translator.feed(block_start(0, text("")))
    with pytest.raises(BadGatewayError):
        translator.finish()
    assert AnthropicStreamTranslator(make_call()).finish() == []


# -- the provider over MockTransport -----------------------------------------------------------------


def provider(**settings: Any) -> AnthropicProvider:
    settings.setdefault("api_key", KEY)
    return AnthropicProvider("claude", AnthropicSettings.model_validate(settings))


def mock_call(
    handler: Callable[[httpx.Request], httpx.Response], stream: bool = False, **fields: Any
) -> UpstreamCall:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    request = ChatCompletionRequest.model_validate({"model": MODEL, **fields})
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return UpstreamCall(request=request, model=MODEL, http=http, request_id="r", stream=stream)


async def test_complete_over_http() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=message(text("hi there"), cache_read_input_tokens=2))

    call = mock_call(handler)
    result = await provider(anthropic_beta=["a-1", "b-2"], headers={"X-Team": "t"}).complete(call)
    assert result.response["choices"][0]["message"]["content"] == "hi there"
    assert result.usage is not None and result.usage.cached_tokens == 2
    assert call.response_model == "claude-haiku-4-5-20251001"
    [request] = seen
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "a-1,b-2"
    assert request.headers["x-team"] == "t"
    assert json.loads(request.content)["max_tokens"] == 8192  # haiku-4-5: 64k max output, capped


async def test_settings_shape_the_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=message(text("x")))

    custom = provider(
        base_url="https://proxy.test/anthropic/v1/",
        anthropic_version="2099-01-01",
        anthropic_beta="one",
        default_max_tokens=99,
        api_keys=["sk-ant-second-key-000000000"],
    )
    for _ in range(2):
        await custom.complete(mock_call(handler))
    assert [str(request.url) for request in seen] == ["https://proxy.test/anthropic/v1/messages"] * 2
    assert seen[0].headers["anthropic-version"] == "2099-01-01"
    assert seen[0].headers["anthropic-beta"] == "one"
    assert [request.headers["x-api-key"] for request in seen] == [KEY, "sk-ant-second-key-000000000"]
    assert json.loads(seen[0].content)["max_tokens"] == 99


async def test_stream_over_http() -> None:
    body = b"".join(
        b"event: x\ndata: " + data + b"\n\n"
        for data in [
            start(),
            block_start(0, text("")),
            delta(0, type="text_delta", text="yo"),
            stop(0),
            *end(),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream; charset=utf-8"})

    chunks = [chunk async for chunk in provider().stream(mock_call(handler, stream=True))]
    assert assembled(chunks)["choices"][0]["message"]["content"] == "yo"


async def test_stream_error_event_is_scrubbed() -> None:
    failure = json.dumps(
        {"type": "error", "error": {"type": "api_error", "message": f"bad key {KEY}"}}
    ).encode()
    body = b"event: message_start\ndata: " + start() + b"\n\nevent: error\ndata: " + failure + b"\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with pytest.raises(GatewayError) as caught:
        async for _ in provider().stream(mock_call(handler, stream=True)):
            pass
    assert KEY not in caught.value.message and caught.value.error_type == "api_error"


async def test_http_errors_are_mapped_and_scrubbed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, content=anthropic_error("authentication_error", f"invalid x-api-key {KEY}")
        )

    with pytest.raises(UpstreamError) as caught:
        await provider().complete(mock_call(handler))
    assert caught.value.status_code == 401
    assert KEY not in caught.value.message


async def test_untranslatable_request_never_reaches_the_upstream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be called")

    with pytest.raises(GatewayError) as caught:
        await provider().complete(mock_call(handler, n=3))
    assert caught.value.status_code == 400 and caught.value.param == "n"


async def test_health_check() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("x-api-key") != KEY:
            return httpx.Response(401, content=anthropic_error("authentication_error", "invalid x-api-key"))
        return httpx.Response(200, json={"data": [], "has_more": False})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    await provider().check_health(http)
    assert seen[0].method == "GET" and str(seen[0].url) == "https://api.anthropic.com/v1/models?limit=1"
    with pytest.raises(UpstreamError) as caught:
        await provider(api_key="sk-ant-wrong-0000000000").check_health(http)
    assert caught.value.status_code == 401

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(BadGatewayError):
        await provider().check_health(httpx.AsyncClient(transport=httpx.MockTransport(unreachable)))


# -- configuration and routing ------------------------------------------------------------------------


def test_provider_attributes_and_routing() -> None:
    gateway = Gateway({"providers": {"openai": {"api_key": "x"}, "anthropic": {"api_key": KEY}}})
    claude = gateway.providers["anthropic"]
    assert isinstance(claude, AnthropicProvider)
    assert claude.otel_provider_name == "anthropic" and claude.price_provider == "anthropic"
    route = gateway.resolver.resolve("claude-3-5-haiku-20241022")
    assert route.provider is claude and route.model == "claude-3-5-haiku-20241022"
    assert "claude-sonnet-4-5" in claude.model_ids()
    assert claude.describe()["base_url"] == "https://api.anthropic.com"


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Gateway({"providers": {"anthropic": {"api_key": KEY, "anthropic_versoin": "x"}}})
    assert "providers.anthropic.anthropic_versoin" in str(caught.value)
    with pytest.raises(ConfigError):
        Gateway({"providers": {"anthropic": {"api_key": KEY, "default_max_tokens": 0}}})
