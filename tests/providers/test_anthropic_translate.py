"""OpenAI request -> Anthropic Messages body: the pure translation functions."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.providers.anthropic.request import json_tool_name, to_anthropic
from rec_llm_gateway.schema import ChatCompletionRequest

MODEL = "claude-sonnet-4-5"
HI = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def request(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("model", MODEL)
    fields.setdefault("messages", HI)
    return ChatCompletionRequest.model_validate(fields)


def translate(**fields: Any) -> dict[str, Any]:
    return to_anthropic(request(**fields), MODEL).payload


def rejected(**fields: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        translate(**fields)
    assert caught.value.status_code == 400
    assert caught.value.error_type == "invalid_request_error"
    return caught.value


# -- messages ---------------------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert to_anthropic(request(), MODEL, model_max_output=64_000).payload == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8192,
    }


def test_system_and_developer_messages_go_to_system() -> None:
    payload = translate(messages=[{"role": "system", "content": "Be brief."}, *HI])
    assert payload["system"] == "Be brief."
    assert payload["messages"] == [{"role": "user", "content": "hi"}]
    payload = translate(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "again"},
        ]
    )
    assert payload["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert [turn["role"] for turn in payload["messages"]] == ["user", "assistant", "user"]


def test_only_system_messages_is_400() -> None:
    assert rejected(messages=[{"role": "system", "content": "x"}]).param == "messages"


def test_consecutive_same_role_messages_merge() -> None:
    payload = translate(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "three"},
        ]
    )
    assert payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": "three"},
    ]


def test_empty_text_is_skipped() -> None:
    payload = translate(
        messages=[
            {"role": "user", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}]},
        ]
    )
    assert payload["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]


def test_tool_calls_and_results() -> None:
    payload = translate(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city": "Paris"}'},
                    },
                    {"id": "t2", "type": "function", "function": {"name": "w", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "rainy"}]},
            {"role": "user", "content": "thanks"},
        ],
        tools=[TOOL],
    )
    assert payload["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "w", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "rainy"}]},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_tool_results_lead_their_user_turn() -> None:
    payload = translate(
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "user", "content": "note"},
            {"role": "tool", "tool_call_id": "t1", "content": ""},
        ]
    )
    assert payload["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "text", "text": "note"},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_bad_tool_call_arguments_are_400_naming_the_param(arguments: str) -> None:
    messages = [
        *HI,
        {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "w", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "t", "content": "x"},
    ]
    assert rejected(messages=messages).param == "messages[1].tool_calls[0].function.arguments"


def test_assistant_refusal_part_and_thinking_blocks() -> None:
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    payload = translate(
        messages=[
            *HI,
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "no"}],
                "thinking_blocks": [thinking],
            },
            {"role": "user", "content": "please"},
        ]
    )
    assert payload["messages"][1]["content"] == [thinking, {"type": "text", "text": "no"}]


def test_final_assistant_prefill_loses_trailing_whitespace() -> None:
    payload = translate(messages=[*HI, {"role": "assistant", "content": "The answer is "}])
    assert payload["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The answer is"}],
    }
    payload = translate(messages=[*HI, {"role": "assistant", "content": "  "}])
    assert payload["messages"] == [{"role": "user", "content": "hi"}]


def test_function_role_is_400() -> None:
    assert rejected(messages=[*HI, {"role": "function", "name": "f", "content": "x"}]).param == "messages[1]"


# -- content parts ----------------------------------------------------------------------------------


def user_parts(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


def test_images() -> None:
    payload = translate(
        messages=user_parts(
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
        )
    )
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/bmp;base64,Qk0=",
        "ftp://x.test/a.png",
        "data:image/png;base64,",
    ],
)
def test_unusable_images_are_400(url: str) -> None:
    error = rejected(messages=user_parts({"type": "image_url", "image_url": {"url": url}}))
    assert error.param == "messages[0].content[0].image_url.url"


def test_percent_encoded_data_urls_are_sent_as_base64() -> None:
    # Fixed disagreement: Bedrock and Gemini always took non-base64 data URLs; Anthropic answered 400.
    payload = translate(
        messages=user_parts({"type": "image_url", "image_url": {"url": "data:image/png,%89PNG"}})
    )
    [block] = payload["messages"][0]["content"]
    assert block["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(b"\x89PNG").decode(),
    }


def test_files() -> None:
    text = base64.b64encode(b"plain words").decode()
    payload = translate(
        messages=user_parts(
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
            },
            {"type": "file", "file": {"file_data": f"data:text/plain;base64,{text}"}},
            {"type": "file", "file": {"file_data": "data:image/png;base64,iVBO"}},
        )
    )
    assert payload["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "file", "file": {"file_id": "file-123"}}, "messages[0].content[0].file"),
        (
            {"type": "file", "file": {"file_data": "data:audio/wav;base64,AAAA"}},
            "messages[0].content[0].file",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "messages[0].content[0].type",
        ),
    ],
)
def test_unsupported_parts_are_400(part: dict[str, Any], param: str) -> None:
    assert rejected(messages=user_parts(part)).param == param


def test_cache_control_is_passed_on() -> None:
    ephemeral = {"type": "ephemeral"}
    payload = translate(
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "long context", "cache_control": ephemeral}],
            },
            {"role": "user", "content": "question", "cache_control": ephemeral},
            {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t", "content": "result", "cache_control": ephemeral},
        ],
        tools=[{**TOOL, "cache_control": ephemeral}],
    )
    assert payload["system"] == [{"type": "text", "text": "long context", "cache_control": ephemeral}]
    assert payload["messages"][0]["content"] == [
        {"type": "text", "text": "question", "cache_control": ephemeral}
    ]
    assert payload["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t", "content": "result", "cache_control": ephemeral}
    ]
    assert payload["tools"][0]["cache_control"] == ephemeral


# -- parameters -------------------------------------------------------------------------------------


def test_sampling_parameters_pass() -> None:
    payload = translate(temperature=0.3, top_p=0.9, top_k=40, stop="END", user="u-1")
    assert payload["temperature"] == 0.3
    assert payload["top_p"] == 0.9
    assert payload["top_k"] == 40
    assert payload["stop_sequences"] == ["END"]
    assert payload["metadata"] == {"user_id": "u-1"}
    assert translate(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in translate(stop=[])
    assert translate(safety_identifier="hash-9")["metadata"] == {"user_id": "hash-9"}


def test_max_tokens() -> None:
    assert translate(max_tokens=100)["max_tokens"] == 100
    assert translate(max_tokens=100, max_completion_tokens=50)["max_tokens"] == 50
    assert (
        to_anthropic(request(), MODEL, default_max_tokens=333, model_max_output=64_000).payload["max_tokens"]
        == 333
    )
    assert to_anthropic(request(), MODEL, model_max_output=4_096).payload["max_tokens"] == 4_096
    assert to_anthropic(request(), MODEL).payload["max_tokens"] == 4_096  # model not catalogued


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice"),
    ],
)
def test_parameters_whose_loss_changes_meaning_are_400(fields: dict[str, Any], param: str) -> None:
    assert rejected(**fields).param == param


def test_parameters_without_equivalent_are_dropped_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "rec_llm_gateway.providers.anthropic")
    payload = translate(
        n=1,
        logprobs=False,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        logit_bias={"50256": -100},
        store=True,
        service_tier="flex",
        modalities=["text"],
        stream_options={"include_usage": True},
        response_format={"type": "text"},
    )
    assert set(payload) == {"model", "messages", "max_tokens"}
    logged = caplog.text
    for name in ("seed", "presence_penalty", "frequency_penalty", "logit_bias", "store", "service_tier"):
        assert repr(name) in logged


def test_anthropic_native_extras_pass() -> None:
    payload = translate(output_config={"effort": "high"}, context_management={"edits": []})
    assert payload["output_config"] == {"effort": "high"}
    assert payload["context_management"] == {"edits": []}


def test_stream_flag() -> None:
    assert to_anthropic(request(), MODEL, stream=True).payload["stream"] is True
    assert "stream" not in to_anthropic(request(stream=True), MODEL).payload


# -- tools --------------------------------------------------------------------------------------------


def test_tools() -> None:
    payload = translate(
        tools=[
            TOOL,
            {"type": "function", "function": {"name": "now"}},
            {"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": {}}}}},
        ]
    )
    assert payload["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": TOOL["function"]["parameters"],
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "f", "input_schema": {"type": "object", "properties": {"a": {}}}},
    ]
    assert "tool_choice" not in payload


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(tool_choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"tools": [TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert translate(**fields)["tool_choice"] == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    payload = translate(tool_choice="auto", parallel_tool_calls=False)
    assert "tool_choice" not in payload and "tools" not in payload


# -- JSON output --------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "City", "description": "A city.", "schema": SCHEMA},
}


def test_json_schema_becomes_a_forced_tool() -> None:
    translated = to_anthropic(request(response_format=JSON_SCHEMA), MODEL)
    assert translated.json_tool == "json_response"
    payload = translated.payload
    assert payload["tool_choice"] == {"type": "tool", "name": "json_response"}
    [tool] = payload["tools"]
    assert tool["name"] == "json_response"
    assert tool["input_schema"] == SCHEMA
    assert tool["description"].endswith("A city.")


def test_json_object_uses_an_open_object_schema() -> None:
    payload = translate(response_format={"type": "json_object"})
    assert payload["tools"][0]["input_schema"] == {"type": "object"}
    assert payload["tool_choice"] == {"type": "tool", "name": "json_response"}


def test_json_output_with_client_tools() -> None:
    payload = translate(response_format=JSON_SCHEMA, tools=[TOOL])
    assert [tool["name"] for tool in payload["tools"]] == ["get_weather", "json_response"]
    assert payload["tool_choice"] == {"type": "any"}  # a real tool, or the answer
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert translate(response_format=JSON_SCHEMA, tools=[TOOL], tool_choice=named)["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    assert translate(response_format=JSON_SCHEMA, tools=[TOOL], tool_choice="none")["tool_choice"] == {
        "type": "tool",
        "name": "json_response",
    }


def test_json_tool_name_avoids_client_tool_names() -> None:
    clash = {"type": "function", "function": {"name": "json_response"}}
    req = request(response_format=JSON_SCHEMA, tools=[clash])
    assert json_tool_name(req) == "json_response_2"
    assert to_anthropic(req, MODEL).json_tool == "json_response_2"
    assert json_tool_name(request()) is None
    assert json_tool_name(request(response_format={"type": "text"})) is None


def test_json_output_with_thinking_asks_instead_of_forcing() -> None:
    payload = translate(
        messages=[{"role": "system", "content": "Be brief."}, *HI],
        response_format=JSON_SCHEMA,
        reasoning_effort="low",
    )
    assert payload["tool_choice"] == {"type": "auto"}
    assert payload["system"] == "Be brief.\n\nGive your final answer by calling the json_response tool."


def test_json_schema_needs_an_object_root() -> None:
    array = {"type": "json_schema", "json_schema": {"name": "L", "schema": {"type": "array"}}}
    assert rejected(response_format=array).param == "response_format.json_schema.schema"
    assert rejected(response_format={"type": "json_schema"}).param == "response_format.json_schema"


# -- thinking ----------------------------------------------------------------------------------------


def test_reasoning_effort_enables_thinking() -> None:
    payload = to_anthropic(request(reasoning_effort="medium"), MODEL, model_max_output=64_000).payload
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert payload["max_tokens"] == 8192 + 8192  # the budget plus room for the answer
    payload = to_anthropic(request(reasoning_effort="high"), MODEL, model_max_output=8_192).payload
    assert payload["max_tokens"] == 8_192 and payload["thinking"]["budget_tokens"] == 8_191
    assert "thinking" not in translate(reasoning_effort="none")


def test_reasoning_effort_fits_the_clients_max_tokens() -> None:
    payload = translate(reasoning_effort="high", max_tokens=3000)
    assert payload["max_tokens"] == 3000
    assert payload["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert rejected(reasoning_effort="low", max_tokens=1000).param == "max_tokens"


def test_explicit_thinking_wins_and_grows_the_default_max_tokens() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2000}
    payload = to_anthropic(
        request(thinking=thinking, reasoning_effort="high"), MODEL, model_max_output=64_000
    ).payload
    assert payload["thinking"] == thinking
    assert payload["max_tokens"] == 8192 + 2000
