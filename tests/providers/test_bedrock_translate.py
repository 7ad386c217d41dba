"""OpenAI request -> Converse body: pure translation, no sockets."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.providers.bedrock.messages import image_urls, tool_use_id
from rec_llm_gateway.providers.bedrock.request import build_converse_body, json_tool_name, model_family
from rec_llm_gateway.schema import ChatCompletionRequest

from ..bedrock_support import PNG
from ..support import WEATHER

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def body(model: str = MODEL, images: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return build_converse_body(
        ChatCompletionRequest.model_validate({"model": "m", **request}), model, images=images
    )


def rejects(match: str, **request: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError, match=match) as caught:
        body(**request)
    assert caught.value.status_code == 400
    return caught.value


def test_minimal_request() -> None:
    assert body() == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def test_system_and_developer_messages_become_system_blocks() -> None:
    result = body(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "system", "content": ""},
            {"role": "user", "content": "hi"},
        ]
    )
    assert result["system"] == [{"text": "Be brief."}, {"text": "Use French."}]
    assert result["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_inference_config() -> None:
    result = body(temperature=0.2, top_p=0.9, max_tokens=100, stop="END")
    assert result["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    # max_completion_tokens wins over the deprecated max_tokens; empty stop strings are dropped
    result = body(max_tokens=100, max_completion_tokens=50, stop=["a", "", "b"])
    assert result["inferenceConfig"] == {"maxTokens": 50, "stopSequences": ["a", "b"]}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", {"top_k": 40}),
        ("us.amazon.nova-pro-v1:0", {"inferenceConfig": {"topK": 40}}),
        ("cohere.command-r-v1:0", {"k": 40}),
        ("mistral.mistral-large-2407-v1:0", {"top_k": 40}),
        ("meta.llama3-1-8b-instruct-v1:0", None),
    ],
)
def test_top_k_goes_to_additional_fields_per_family(model: str, expected: dict[str, Any] | None) -> None:
    assert body(model, top_k=40).get("additionalModelRequestFields") == expected


def test_model_family() -> None:
    assert model_family("us.anthropic.claude-3-haiku") == "anthropic"
    assert model_family("global.amazon.nova-2-lite-v1:0") == "amazon"
    assert model_family("meta.llama3-1-8b-instruct-v1:0") == "meta"
    assert model_family("arn:aws:bedrock:us-east-1:123:inference-profile/eu.mistral.pixtral") == "mistral"


def test_reasoning_effort() -> None:
    result = body(reasoning_effort="medium")
    # the same budget as Claude on Anthropic directly (it was 4,096 here and 8,192 there)
    assert result["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 8192}}
    assert result["inferenceConfig"]["maxTokens"] == 8192 + 8192
    # a max_tokens below the budget shrinks the budget; too small to think at all is a 400
    assert (
        body(reasoning_effort="high", max_tokens=3000)["additionalModelRequestFields"]["thinking"][
            "budget_tokens"
        ]
        == 2999
    )
    rejects("max_tokens must be above 1024", reasoning_effort="low", max_tokens=1000)
    assert "additionalModelRequestFields" not in body(reasoning_effort="none")
    nova = body("us.amazon.nova-2-lite-v1:0", reasoning_effort="high")["additionalModelRequestFields"]
    assert nova == {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "high"}}
    assert body("openai.gpt-oss-120b-1:0", reasoning_effort="low")["additionalModelRequestFields"] == {
        "reasoning_effort": "low"
    }
    assert "additionalModelRequestFields" not in body(
        "meta.llama3-1-8b-instruct-v1:0", reasoning_effort="low"
    )


def test_additional_model_request_fields_pass_through_and_win() -> None:
    result = body(top_k=5, additional_model_request_fields={"top_k": 7, "thinking": {"type": "adaptive"}})
    assert result["additionalModelRequestFields"] == {"top_k": 7, "thinking": {"type": "adaptive"}}
    rejects("must be an object", additional_model_request_fields="nope")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"42": 10}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
def test_parameters_that_change_the_answer_are_a_400(params: dict[str, Any], param: str) -> None:
    error = rejects("not supported by Bedrock", **params)
    assert error.param == param
    assert error.code == "unsupported_parameter"


def test_parameters_without_equivalent_are_dropped_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "rec_llm_gateway.providers.bedrock")
    result = body(
        seed=7, presence_penalty=0.5, frequency_penalty=0.5, user="u1", parallel_tool_calls=False,
        n=1, logprobs=False, store=True, metadata={"a": "b"},
    )  # fmt: skip
    assert result == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    logged = " ".join(record.getMessage() for record in caplog.records)
    for name in (
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "user",
        "parallel_tool_calls",
        "store",
        "metadata",
    ):
        assert name in logged


def test_tools_and_tool_choice() -> None:
    result = body(tools=[WEATHER])
    spec = {
        "toolSpec": {
            "name": "get_weather",
            "description": "Weather for a city",
            "inputSchema": {"json": WEATHER["function"]["parameters"]},
        }
    }
    assert result["toolConfig"] == {"tools": [spec]}
    assert body(tools=[WEATHER], tool_choice="auto")["toolConfig"]["toolChoice"] == {"auto": {}}
    assert body(tools=[WEATHER], tool_choice="required")["toolConfig"]["toolChoice"] == {"any": {}}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert body(tools=[WEATHER], tool_choice=named)["toolConfig"]["toolChoice"] == {
        "tool": {"name": "get_weather"}
    }
    assert "toolConfig" not in body(tools=[WEATHER], tool_choice="none")
    strict = {"type": "function", "function": {"name": "f", "strict": True}}
    assert body(tools=[strict])["toolConfig"]["tools"][0]["toolSpec"] == {
        "name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}, "strict": True,
    }  # fmt: skip


def test_bad_tool_choices_and_tools() -> None:
    rejects(
        "name a function", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}
    )
    rejects("Invalid value for 'tool_choice'", tools=[WEATHER], tool_choice="sometimes")
    rejects("only function tools", tools=[{"type": "code_interpreter"}])


def history(tool_content: str = "Sunny, 22C") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": tool_content},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "Rainy"}]},
        {"role": "user", "content": "Thanks. Which is nicer?"},
    ]


def test_tool_round_trip_history_is_structured_and_merged() -> None:
    result = body(messages=history(), tools=[WEATHER])
    assert result["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "call_1",
                        "content": [{"text": "Sunny, 22C"}],
                        "status": "success",
                    }
                },
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "Rainy"}], "status": "success"}},
                {"text": "Thanks. Which is nicer?"},
            ],
        },
    ]


@pytest.mark.parametrize("request_tools", [{"tools": [WEATHER], "tool_choice": "none"}, {}])
def test_tool_history_without_tools_is_rendered_as_text(request_tools: dict[str, Any]) -> None:
    result = body(messages=history(), **request_tools)
    assert "toolConfig" not in result
    flat = [block for turn in result["messages"] for block in turn["content"]]
    assert all(set(block) == {"text"} for block in flat)
    assert '[called tool get_weather (call id call_1) with arguments {"city":"Paris"}]' in [
        b["text"] for b in flat
    ]
    assert "[result of tool call call_1]\nSunny, 22C" in [b["text"] for b in flat]
    assert [turn["role"] for turn in result["messages"]] == ["user", "assistant", "user"]


def test_invalid_tool_arguments_are_a_400() -> None:
    messages = history()
    messages[1]["tool_calls"][0]["function"]["arguments"] = "{not json"
    error = rejects("must be a JSON object", messages=messages, tools=[WEATHER])
    assert error.param == "messages[1].tool_calls[0].function.arguments"


def test_empty_tool_result_and_foreign_tool_ids() -> None:
    foreign = "toolu_" + "x" * 80  # longer than Bedrock's 64 characters
    messages = history(tool_content="")
    messages[1]["tool_calls"][0]["id"] = foreign
    messages[2]["tool_call_id"] = foreign
    result = body(messages=messages, tools=[WEATHER])
    use = result["messages"][1]["content"][1]["toolUse"]
    outcome = result["messages"][2]["content"][0]["toolResult"]
    assert use["toolUseId"] == outcome["toolUseId"] == tool_use_id(foreign)
    assert len(use["toolUseId"]) <= 64
    assert outcome["content"] == []
    assert tool_use_id("tooluse_8ZVLMmsdearTDSS0unN07z") == "tooluse_8ZVLMmsdearTDSS0unN07z"


def test_consecutive_same_role_messages_are_merged_and_empty_ones_skipped() -> None:
    result = body(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": ""},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "three"}, {"type": "refusal", "refusal": "no"}],
            },
            {"role": "assistant", "content": None, "refusal": "declined"},
        ]
    )
    assert result["messages"] == [
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
        {"role": "assistant", "content": [{"text": "three"}, {"text": "no"}, {"text": "declined"}]},
    ]


def test_function_role_is_a_400() -> None:
    rejects("role 'function'", messages=[{"role": "function", "name": "f", "content": "x"}])


def test_images() -> None:
    url = "https://example.com/cat.png"
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/gif,GIF89a"}},
    ]
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}]}
    )
    assert image_urls(request.messages) == [url]
    fetched = {url: {"format": "jpeg", "source": {"bytes": "AAAA"}}}
    blocks = build_converse_body(request, MODEL, images=fetched)["messages"][0]["content"]
    assert blocks == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
        {"image": fetched[url]},
        {"image": {"format": "gif", "source": {"bytes": base64.b64encode(b"GIF89a").decode()}}},
    ]


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("data:image/bmp;base64,Qk0=", "image type 'image/bmp'"),
        ("data:image/png;base64", "not a valid data URL"),
        ("ftp://example.com/a.png", "must be data: or http"),
        ("https://example.com/not-fetched.png", "must be data: or http"),
    ],
)
def test_bad_images_are_a_400(url: str, match: str) -> None:
    rejects(match, messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_documents_and_unsupported_parts() -> None:
    pdf = "data:application/pdf;base64,JVBERi0x"
    parts = [
        {"type": "file", "file": {"file_data": pdf, "filename": "Q3 report (final)!.pdf"}},
        {"type": "file", "file": {"file_data": pdf, "filename": "Q3 report (final)!.pdf"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/octet-stream;base64,eA==", "filename": "notes.md"},
        },
    ]
    blocks = body(messages=[{"role": "user", "content": parts}])["messages"][0]["content"]
    assert blocks == [
        {"document": {"format": "pdf", "name": "Q3 report (final)-", "source": {"bytes": "JVBERi0x"}}},
        {"document": {"format": "pdf", "name": "Q3 report (final)- (2)", "source": {"bytes": "JVBERi0x"}}},
        {"document": {"format": "md", "name": "notes", "source": {"bytes": "eA=="}}},
    ]
    rejects(
        "'file_id' has no equivalent",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}],
    )
    rejects(
        "not supported by Bedrock documents",
        messages=[
            {
                "role": "user",
                "content": [{"type": "file", "file": {"file_data": "data:video/mp4;base64,AA=="}}],
            }
        ],
    )
    audio = {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}
    rejects("'input_audio' are not supported", messages=[{"role": "user", "content": [audio]}])


def test_cache_control_adds_cache_points() -> None:
    result = body(
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}}],
            },
        ]
    )
    assert result["system"] == [{"text": "Long rules"}, {"cachePoint": {"type": "default"}}]
    assert result["messages"][0]["content"] == [{"text": "Long doc"}, {"cachePoint": {"type": "default"}}]


def test_response_format_json_schema_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    result = body(response_format=response_format)
    [tool] = result["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "answer"
    assert tool["toolSpec"]["inputSchema"] == {"json": schema}
    assert tool["toolSpec"]["strict"] is True
    assert result["toolConfig"]["toolChoice"] == {"tool": {"name": "answer"}}
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": response_format}
    )
    assert json_tool_name(request) == "answer"


def test_response_format_with_client_tools_and_json_object() -> None:
    result = body(tools=[WEATHER], response_format={"type": "json_object"})
    names = [tool["toolSpec"]["name"] for tool in result["toolConfig"]["tools"]]
    assert names == ["get_weather", "json_response"]
    assert result["toolConfig"]["toolChoice"] == {"any": {}}  # a real tool or the answer tool
    assert result["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert body(tools=[WEATHER], tool_choice=named, response_format={"type": "json_object"})["toolConfig"][
        "toolChoice"
    ] == {"tool": {"name": "get_weather"}}
    assert "toolConfig" not in body(response_format={"type": "text"})
    # A schema named like a client tool: the JSON tool is renamed (it was a 400 here; Anthropic renamed)
    clash = {"type": "json_schema", "json_schema": {"name": "get_weather", "schema": {"type": "object"}}}
    renamed = body(tools=[WEATHER], response_format=clash)["toolConfig"]["tools"]
    assert [tool["toolSpec"]["name"] for tool in renamed] == ["get_weather", "get_weather_2"]
    rejects("response_format.type", response_format={"type": "yaml"})
