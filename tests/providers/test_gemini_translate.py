"""OpenAI request -> Gemini body: pure translation, no sockets."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.providers.gemini.messages import SIGNATURE_MARK, split_tool_call_id, tool_call_id
from rec_llm_gateway.providers.gemini.request import build_body
from rec_llm_gateway.providers.gemini.schema import openapi_schema
from rec_llm_gateway.schema import ChatCompletionRequest

from ..support import WEATHER


def body(model: str = "gemini-2.5-flash", schema_mode: Any = "json_schema", **request: Any) -> dict[str, Any]:
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    parsed = ChatCompletionRequest.from_json(json.dumps({"model": model, **request}).encode())
    return build_body(parsed, model, schema_mode=schema_mode)


def refused(**request: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        body(**request)
    return caught.value


# -- messages ---------------------------------------------------------------------------------------


def test_roles_system_and_merging() -> None:
    result = body(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "one"},
            {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": ""},  # nothing to send: skipped, not an empty content
            {"role": "user", "name": "bob", "content": "four"},
        ]
    )
    assert result["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]}
    assert result["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},  # adjacent turns merged
        {"role": "model", "parts": [{"text": "three"}]},
        {"role": "user", "parts": [{"text": "four"}]},
    ]
    assert "generationConfig" not in result and "tools" not in result


def test_only_system_messages_is_a_400() -> None:
    error = refused(messages=[{"role": "system", "content": "alone"}])
    assert error.status_code == 400 and error.param == "messages"


@given(
    base=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True).filter(lambda s: SIGNATURE_MARK not in s),
    signature=st.binary(min_size=1, max_size=300),
)
def test_tool_call_id_carries_a_signature_losslessly(base: str, signature: bytes) -> None:
    encoded = base64.b64encode(signature).decode()
    made = tool_call_id(base, encoded)
    assert all(char.isalnum() or char in "_-" for char in made)  # safe for any provider's id rules
    assert split_tool_call_id(made) == (base, encoded)
    assert split_tool_call_id(base) == (base, None)
    assert tool_call_id(base, None) == base


def test_tool_round_trip_history() -> None:
    signed = tool_call_id("call_r1_0", "c2ln+/8=")
    result = body(
        messages=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": signed,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_r1_1",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                        "extra_content": {"google": {"thought_signature": "b3RoZXI="}},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": signed, "content": "sunny"},
            {
                "role": "tool",
                "tool_call_id": "call_r1_1",
                "content": [{"type": "text", "text": '{"hour": 9}'}],
            },
            {"role": "user", "content": "thanks"},
        ],
        tools=[WEATHER],
    )
    assert result["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_r1_0"},
                "thoughtSignature": "c2ln+/8=",
            },
            {
                "functionCall": {"name": "get_time", "args": {}, "id": "call_r1_1"},
                "thoughtSignature": "b3RoZXI=",
            },
        ],
    }
    # parallel results (and the next user text) share one user content; names come from the calls
    assert result["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}, "id": "call_r1_0"}},
            {"functionResponse": {"name": "get_time", "response": {"hour": 9}, "id": "call_r1_1"}},
            {"text": "thanks"},
        ],
    }


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "{not json", "42"])
def test_tool_results_that_are_not_objects_are_wrapped(content: str) -> None:
    result = body(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": content},
        ]
    )
    assert result["contents"][2]["parts"][0]["functionResponse"]["response"] == {"output": content}


def test_tool_result_without_a_matching_call() -> None:
    error = refused(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "tool", "tool_call_id": "nowhere", "content": "x"},
        ]
    )
    assert error.param == "messages[1].tool_call_id" and "nowhere" in error.message
    # a client that names the function on the tool message is understood
    result = body(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "tool", "tool_call_id": "nowhere", "name": "f", "content": "x"},
        ]
    )
    assert result["contents"][0]["parts"][1]["functionResponse"]["name"] == "f"


def test_legacy_function_role() -> None:
    result = body(
        messages=[{"role": "user", "content": "go"}, {"role": "function", "name": "f", "content": "ok"}]
    )
    assert result["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "f", "response": {"output": "ok"}}
    }


@pytest.mark.parametrize("arguments", ["not json", "[1]", '"s"'])
def test_arguments_must_be_a_json_object(arguments: str) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    error = refused(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}])
    assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_media_parts() -> None:
    def image(url: str) -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": url}}

    result = body(
        messages=[
            {
                "role": "user",
                "content": [
                    image("data:image/png;base64,iVBORw0K"),
                    image("data:text/plain,hello%20world"),
                    image("https://example.com/a/photo.JPG?size=large"),
                    image("gs://bucket/scan.pdf"),
                    image("http://example.com/no-suffix"),
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "notes.txt"}},
                    {"type": "file", "file": {"file_id": "gs://bucket/report.pdf"}},
                ],
            }
        ]
    )
    assert result["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"inlineData": {"mimeType": "text/plain", "data": base64.b64encode(b"hello world").decode()}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a/photo.JPG?size=large"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/scan.pdf"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "http://example.com/no-suffix"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"inlineData": {"mimeType": "text/plain", "data": "JVBERi0="}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        (
            {"type": "image_url", "image_url": {"url": "ftp://host/x.png"}},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64"}},
            "messages[0].content[0].image_url.url",
        ),
        ({"type": "file", "file": {"file_id": "file-abc123"}}, "messages[0].content[0].file"),
        ({"type": "input_audio", "input_audio": {"data": "x"}}, "messages[0].content[0].input_audio"),
    ],
)
def test_unusable_media_is_a_400(part: dict[str, Any], param: str) -> None:
    assert refused(messages=[{"role": "user", "content": [part]}]).param == param


# -- tools --------------------------------------------------------------------------------------------


def test_tools_as_json_schema() -> None:
    result = body(tools=[WEATHER, {"type": "function", "function": {"name": "noargs"}}])
    assert result["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],
                },
                {"name": "noargs"},
            ]
        }
    ]
    assert "toolConfig" not in result


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert body(tools=[WEATHER], tool_choice=choice)["toolConfig"] == {"functionCallingConfig": expected}


def test_allowed_tools_auto_offers_only_those() -> None:
    other = {"type": "function", "function": {"name": "other"}}
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "other"}}]},
    }
    result = body(tools=[WEATHER, other], tool_choice=choice)
    assert result["tools"] == [{"functionDeclarations": [{"name": "other"}]}]
    assert result["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_tool_choice_without_tools_is_ignored() -> None:
    assert "toolConfig" not in body(tool_choice="none")


@pytest.mark.parametrize(
    ("request_fields", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {}}},
            "tool_choice.function.name",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
            "tool_choice.allowed_tools.tools",
        ),
        (
            {
                "tools": [WEATHER],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {"tools": [{"function": 1}]}},
            },
            "tool_choice.allowed_tools.tools",
        ),
    ],
)
def test_bad_tools(request_fields: dict[str, Any], param: str) -> None:
    assert refused(**request_fields).param == param


def test_openapi_schema_mode() -> None:
    parameters = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "$defs": {"Unit": {"type": "string", "enum": ["C", "F"], "description": "unit"}},
        "properties": {
            "city": {"type": ["string", "null"], "title": "City"},
            "unit": {"$ref": "#/$defs/Unit"},
            "days": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None},
            "mode": {"const": "fast"},
            "tags": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
            "extra": {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}}]},
        },
        "required": ["city"],
    }
    result = body(
        schema_mode="openapi",
        tools=[{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    )
    assert result["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "required": ["city"],
        "properties": {
            "city": {"type": "string", "nullable": True, "title": "City"},
            "unit": {"type": "string", "enum": ["C", "F"], "description": "unit"},
            "days": {"type": "integer", "minimum": 1, "nullable": True, "default": None},
            "mode": {"enum": ["fast"]},
            "tags": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "extra": {"type": "object", "properties": {"a": {"type": "boolean"}}},
        },
    }


def test_openapi_schema_refuses_recursion() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    with pytest.raises(InvalidRequestError) as caught:
        openapi_schema(schema)
    assert caught.value.code == "unsupported_schema"


# -- generation config and the parameter rule -----------------------------------------------------------


def test_generation_config() -> None:
    result = body(
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        max_tokens=100,
        max_completion_tokens=200,  # the newer name wins
        stop="END",
        n=2,
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logprobs=True,
        top_logprobs=3,
        safety_settings=[{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        cached_content="cachedContents/abc",
    )
    assert result["generationConfig"] == {
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 200,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "responseLogprobs": True,
        "logprobs": 3,
    }
    assert result["safetySettings"] == [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
    assert result["cachedContent"] == "cachedContents/abc"
    assert body(max_tokens=5, stop=["a", "b"], n=1)["generationConfig"] == {
        "maxOutputTokens": 5,
        "stopSequences": ["a", "b"],
    }


def test_provider_safety_settings_are_the_default() -> None:
    parsed = ChatCompletionRequest.from_json(
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}'
    )
    default = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    assert build_body(parsed, "m", safety_settings=default)["safetySettings"] == default


@pytest.mark.parametrize(
    ("response_format", "mode", "expected"),
    [
        ({"type": "text"}, "json_schema", None),
        ({"type": "json_object"}, "json_schema", {"responseMimeType": "application/json"}),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "x",
                    "strict": True,
                    "schema": {"type": "object", "additionalProperties": False},
                },
            },
            "json_schema",
            {
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "additionalProperties": False},
            },
        ),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object", "additionalProperties": False}},
            },
            "openapi",
            {"responseMimeType": "application/json", "responseSchema": {"type": "object"}},
        ),
    ],
)
def test_response_format(response_format: dict[str, Any], mode: str, expected: dict[str, Any] | None) -> None:
    assert body(response_format=response_format, schema_mode=mode).get("generationConfig") == expected


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
        ("gemini-3-flash-preview", "medium", {"thinkingLevel": "medium"}),
        ("gemini-3.1-pro-preview", "none", {"thinkingLevel": "minimal"}),
        ("gemini-4-argon", "xhigh", {"thinkingLevel": "high"}),
    ],
)
def test_reasoning_effort(model: str, effort: str, expected: dict[str, Any]) -> None:
    assert body(model=model, reasoning_effort=effort)["generationConfig"] == {"thinkingConfig": expected}


def test_thinking_config_escape_hatch_wins() -> None:
    result = body(reasoning_effort="low", thinking_config={"includeThoughts": True, "thinkingBudget": 99})
    assert result["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 99, "includeThoughts": True}
    assert refused(reasoning_effort="huge").param == "reasoning_effort"
    assert refused(reasoning_effort={"level": "low"}).param == "reasoning_effort"
    assert refused(response_format={"type": "yaml"}).param == "response_format.type"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logit_bias", {"50256": -100}),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
        ("web_search_options", {}),
    ],
)
def test_parameters_whose_loss_changes_the_answer_are_refused(field: str, value: Any) -> None:
    if value == {}:
        value = {"search_context_size": "low"}
    error = refused(**{field: value})
    assert (error.status_code, error.param, error.code) == (400, field, "unsupported_parameter")


def test_bookkeeping_parameters_are_dropped_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rec_llm_gateway.providers.gemini")
    result = body(
        user="user-1",
        store=True,
        metadata={"k": "v"},
        service_tier="auto",
        logit_bias={},  # empty: nothing to honour
        modalities=["text"],
        parallel_tool_calls=True,
        stream_options={"include_usage": True},
    )
    assert result == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "metadata, modalities, service_tier, store, user" in logged
