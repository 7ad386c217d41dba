"""Gemini response, stream events and errors -> OpenAI shapes: pure translation, no sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rec_llm_gateway.errors import BadGatewayError, RateLimitError, UpstreamError
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.providers.gemini.errors import google_error
from rec_llm_gateway.providers.gemini.messages import split_tool_call_id
from rec_llm_gateway.providers.gemini.response import map_finish_reason, usage_from
from rec_llm_gateway.providers.gemini.response import translate_response as gemini_result
from rec_llm_gateway.providers.gemini.stream import GeminiStreamTranslator
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.usage import TokenUsage


def translate_response(
    data: Any, model: str, *, single_call: bool = False
) -> tuple[dict[str, Any], TokenUsage | None]:
    result = gemini_result(data, model, single_call=single_call)
    return result.response, result.usage


def candidate(*parts: dict[str, Any], finish: str | None = "STOP", **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, **extra}
    if finish:
        found["finishReason"] = finish
    return found


def call_part(name: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}, **extra}


def make_call() -> UpstreamCall:
    request = ChatCompletionRequest.from_json(
        b'{"model": "g", "messages": [{"role": "user", "content": "x"}]}'
    )
    return UpstreamCall(request=request, model="gemini-2.5-flash", http=None, request_id="r1", stream=True)  # type: ignore[arg-type]


# -- complete responses ---------------------------------------------------------------------------------


def test_text_thoughts_and_usage() -> None:
    data = {
        "candidates": [
            candidate({"text": "Let me think.", "thought": True}, {"text": "Hello"}, {"text": " there"})
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 6,
            "cachedContentTokenCount": 8,
            "toolUsePromptTokenCount": 2,
            "totalTokenCount": 22,
        },
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "abc",
    }
    response, usage = translate_response(data, "gemini-2.5-flash")
    assert response["id"] == "chatcmpl-abc" and response["object"] == "chat.completion"
    assert response["model"] == "gemini-2.5-flash-001"
    assert response["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello there",
                "refusal": None,  # OpenAI's schema requires it (issue 12: it was missing)
                "reasoning_content": "Let me think.",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert response["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 10,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 6},
    }
    assert usage is not None and usage.reasoning_tokens == 6 and usage.cached_tokens == 8


def test_function_calls_get_ids_and_keep_signatures() -> None:
    data = {
        "candidates": [
            candidate(
                {"text": "Calling."},
                call_part("a", {"x": 1}, thoughtSignature="c2ln"),
                call_part("b", {}),
                {"functionCall": {"name": "c", "args": {"é": "ü"}, "id": "gemini-id-7"}},
            )
        ],
        "responseId": "resp/1+x",
    }
    response, _ = translate_response(data, "m")
    message = response["choices"][0]["message"]
    assert message["content"] == "Calling."
    assert response["choices"][0]["finish_reason"] == "tool_calls"  # STOP + a function call
    first, second, third = message["tool_calls"]
    assert split_tool_call_id(first["id"]) == ("call_resp1x_0", "c2ln")
    assert (second["id"], third["id"]) == ("call_resp1x_1", "gemini-id-7")
    assert [json.loads(call["function"]["arguments"]) for call in (first, second, third)] == [
        {"x": 1},
        {},
        {"é": "ü"},
    ]
    assert first["type"] == "function" and first["function"]["name"] == "a"
    # the same response translates to the same ids (stable enough to map results back)
    assert translate_response(data, "m")[0]["choices"][0]["message"]["tool_calls"] == message["tool_calls"]


def test_only_a_call_has_null_content_and_single_call_mode_keeps_the_first() -> None:
    data = {"candidates": [candidate(call_part("a", {}), call_part("b", {}))], "responseId": "r"}
    message = translate_response(data, "m", single_call=True)[0]["choices"][0]["message"]
    assert message["content"] is None
    assert [call["function"]["name"] for call in message["tool_calls"]] == ["a"]


@pytest.mark.parametrize(
    ("reason", "called", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        (None, True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        *[
            (reason, False, "content_filter")
            for reason in (
                "SAFETY",
                "RECITATION",
                "BLOCKLIST",
                "PROHIBITED_CONTENT",
                "SPII",
                "IMAGE_SAFETY",
                "IMAGE_PROHIBITED_CONTENT",
                "IMAGE_RECITATION",
                "IMAGE_OTHER",
            )
        ],
        *[
            (reason, False, "stop")
            for reason in (
                "OTHER",
                "LANGUAGE",
                "MALFORMED_FUNCTION_CALL",
                "UNEXPECTED_TOOL_CALL",
                "TOO_MANY_TOOL_CALLS",
                "NO_IMAGE",
                "FINISH_REASON_UNSPECIFIED",
            )
        ],
    ],
)
def test_finish_reasons(reason: str | None, called: bool, expected: str) -> None:
    assert map_finish_reason(reason, called) == expected


def test_several_candidates_and_logprobs() -> None:
    logprobs = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "!", "logProbability": -0.5}],
        "topCandidates": [
            {
                "candidates": [
                    {"token": "Hi", "logProbability": -0.1},
                    {"token": "Hey", "logProbability": -2.0},
                ]
            },
            {"candidates": [{"token": "!", "logProbability": -0.5}]},
        ],
    }
    data = {
        "candidates": [
            candidate({"text": "Hi!"}, index=0, logprobsResult=logprobs),
            candidate({"text": "Yo"}, finish="MAX_TOKENS", index=1),
        ]
    }
    response, usage = translate_response(data, "fallback-model")
    assert usage is None and "usage" not in response and response["model"] == "fallback-model"
    first, second = response["choices"]
    assert (second["index"], second["message"]["content"], second["finish_reason"]) == (1, "Yo", "length")
    assert first["logprobs"]["content"] == [
        {
            "token": "Hi",
            "logprob": -0.1,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                {"token": "Hey", "logprob": -2.0, "bytes": [72, 101, 121]},
            ],
        },
        {
            "token": "!",
            "logprob": -0.5,
            "bytes": [33],
            "top_logprobs": [{"token": "!", "logprob": -0.5, "bytes": [33]}],
        },
    ]


def test_blocked_prompt_and_empty_answers() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    response, usage = translate_response(blocked, "m")
    assert response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "", "refusal": "The prompt was blocked (SAFETY)."},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert usage is not None and usage.prompt_tokens == 5
    with pytest.raises(BadGatewayError):
        translate_response({"candidates": []}, "m")
    with pytest.raises(BadGatewayError):
        translate_response(["not", "an", "object"], "m")


def test_usage_from_nothing() -> None:
    assert usage_from(None) is None
    assert usage_from({"trafficType": "ON_DEMAND"}).to_openai() == {  # type: ignore[union-attr]
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }


# -- streams ------------------------------------------------------------------------------------------


def event(*candidates: dict[str, Any], usage: dict[str, Any] | None = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {
        "candidates": list(candidates),
        "responseId": "s1",
        "modelVersion": "gemini-x",
        **extra,
    }
    if usage is not None:
        data["usageMetadata"] = usage
    return json.dumps(data).encode()


def deltas(chunks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    return [
        (chunk["choices"][0]["delta"], chunk["choices"][0]["finish_reason"])
        for chunk in chunks
        if chunk["choices"]
    ]


def test_stream_text_with_thoughts() -> None:
    call = make_call()
    translator = GeminiStreamTranslator(call, "gemini")
    out = translator.feed(
        event(candidate({"text": "Hmm", "thought": True}, finish=None), usage={"promptTokenCount": 3})
    )
    out += translator.feed(
        event(candidate({"text": "Hel"}, {"text": "lo"}, finish=None), usage={"promptTokenCount": 3})
    )
    out += translator.feed(
        event(
            candidate({"text": ""}),
            usage={"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 1},
        )
    )
    assert all(chunk["choices"] for chunk in out), "usage only comes out at the end"
    assert deltas(out) == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "Hmm"}, None),
        ({"content": "Hello"}, None),
        ({}, "stop"),
    ]
    assert {(chunk["id"], chunk["object"], chunk["model"]) for chunk in out} == {
        ("chatcmpl-s1", "chat.completion.chunk", "gemini-x")
    }
    assert call.response_model == "gemini-x"
    [usage] = translator.finish()
    assert usage["choices"] == [] and usage["id"] == "chatcmpl-s1"
    assert usage["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 3,
        "total_tokens": 7,
        "completion_tokens_details": {"reasoning_tokens": 1},
    }


def test_stream_tool_calls_arrive_whole() -> None:
    translator = GeminiStreamTranslator(make_call(), "gemini")
    out = translator.feed(event(candidate(call_part("a", {"q": 1}, thoughtSignature="c2ln"), finish=None)))
    out += translator.feed(event(candidate(call_part("b", {}), finish=None)))
    out += translator.feed(event(candidate({"text": ""})))
    (role, _), (first, _), (second, _), (end, reason) = deltas(out)
    assert role["role"] == "assistant"
    [call_a] = first["tool_calls"]
    assert call_a["index"] == 0 and split_tool_call_id(call_a["id"]) == ("call_s1_0", "c2ln")
    assert call_a["function"] == {"name": "a", "arguments": '{"q":1}'}
    assert second["tool_calls"][0]["index"] == 1 and second["tool_calls"][0]["id"] == "call_s1_1"
    assert (end, reason) == ({}, "tool_calls")
    assert translator.finish() == []  # no usage was reported


def test_stream_single_call_mode_and_two_candidates() -> None:
    translator = GeminiStreamTranslator(make_call(), "gemini", single_call=True)
    out = translator.feed(
        event(
            candidate(call_part("a", {}), call_part("b", {}), finish=None, index=0),
            candidate({"text": "other"}, finish=None, index=1),
        )
    )
    out += translator.feed(event(candidate(call_part("c", {}), index=0), candidate({"text": "!"}, index=1)))
    by_index: dict[int, list[Any]] = {}
    for chunk in out:
        choice = chunk["choices"][0]
        by_index.setdefault(choice["index"], []).append((choice["delta"], choice["finish_reason"]))
    names = [call["function"]["name"] for delta, _ in by_index[0] for call in delta.get("tool_calls", ())]
    assert names == ["a"]
    assert by_index[0][-1] == ({}, "tool_calls")
    assert [delta.get("content") for delta, _ in by_index[1]] == ["", "other", "!", None]
    assert by_index[1][-1][1] == "stop"


def test_stream_blocked_prompt() -> None:
    translator = GeminiStreamTranslator(make_call(), "gemini")
    data = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "No."},
        "usageMetadata": {"promptTokenCount": 2},
    }
    out = translator.feed(json.dumps(data).encode())
    assert deltas(out) == [
        ({"role": "assistant", "content": "", "refusal": "No."}, None),
        ({}, "content_filter"),
    ]
    assert translator.feed(json.dumps(data).encode()) == []  # said once
    assert translator.finish()[0]["usage"]["prompt_tokens"] == 2


def test_stream_errors() -> None:
    translator = GeminiStreamTranslator(make_call(), "gemini")
    with pytest.raises(BadGatewayError):
        translator.feed(b"{not json")
    with pytest.raises(BadGatewayError):
        translator.feed(b"[1]")
    with pytest.raises(BadGatewayError, match="cannot read"):
        translator.feed(
            b'{"candidates": [{"content": {"parts": [{"text": "x"}]}, '
            b'"logprobsResult": {"chosenCandidates": [1]}}]}'
        )
    with pytest.raises(RateLimitError) as caught:
        translator.feed(b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}')
    assert caught.value.error_type == "RESOURCE_EXHAUSTED"
    with pytest.raises(BadGatewayError) as overloaded:
        translator.feed(
            b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
        )
    assert "overloaded" in overloaded.value.message
    assert GeminiStreamTranslator(make_call(), "gemini").finish() == []


# -- errors ------------------------------------------------------------------------------------------


def rpc(status: int, rpc_status: str, message: str = "boom", **extra: Any) -> bytes:
    return json.dumps({"error": {"code": status, "message": message, "status": rpc_status, **extra}}).encode()


def test_google_errors() -> None:
    error = google_error(404, httpx.Headers(), rpc(404, "NOT_FOUND", "models/x is not found"), "gemini")
    assert isinstance(error, UpstreamError)
    assert (error.status_code, error.error_type, error.message) == (404, "NOT_FOUND", "models/x is not found")
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
    ]
    invalid = google_error(
        400, httpx.Headers(), rpc(400, "INVALID_ARGUMENT", "API key not valid.", details=details), "g"
    )
    assert (invalid.status_code, invalid.error_type, invalid.code) == (
        400,
        "INVALID_ARGUMENT",
        "API_KEY_INVALID",
    )
    wrapped = google_error(403, httpx.Headers(), b"[" + rpc(403, "PERMISSION_DENIED") + b"]", "g")
    assert (wrapped.status_code, wrapped.error_type) == (403, "PERMISSION_DENIED")
    server = google_error(500, httpx.Headers(), rpc(500, "INTERNAL", "oops"), "g")
    assert server.status_code == 502 and "oops" in server.message
    garbage = google_error(502, httpx.Headers(), b"<html>bad gateway</html>", "g")
    assert garbage.status_code == 502 and "bad gateway" in garbage.message


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"retry-after": "12"}, [], "12"),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}], "37"),
        ({}, [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}], "2"),
        ({}, [], None),
    ],
)
def test_rate_limit_keeps_retry_after(
    headers: dict[str, str], details: list[Any], expected: str | None
) -> None:
    error = google_error(429, httpx.Headers(headers), rpc(429, "RESOURCE_EXHAUSTED", details=details), "g")
    assert isinstance(error, RateLimitError)
    assert (error.status_code, error.error_type) == (429, "RESOURCE_EXHAUSTED")
    assert error.headers.get("retry-after") == expected
