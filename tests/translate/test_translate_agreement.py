"""The native providers agree where issue 12 found them disagreeing (each case was a bug):

- the same Claude model got different thinking budgets directly (2,048 / 8,192) and through Bedrock
  (1,024 / 4,096);
- non-base64 data URLs worked on Bedrock but were a 400 on Anthropic;
- the JSON tool behind ``response_format`` was renamed on a name clash for Anthropic but was a 400
  for Bedrock.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rec_llm_gateway.providers.anthropic.request import to_anthropic
from rec_llm_gateway.providers.bedrock.request import build_converse_body
from rec_llm_gateway.schema import ChatCompletionRequest
from rec_llm_gateway.translate.request import CLAUDE_THINKING_BUDGETS

CLAUDE_DIRECT = "claude-sonnet-4-5"
CLAUDE_BEDROCK = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def request(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCompletionRequest.model_validate({"model": "m", **fields})


@pytest.mark.parametrize("effort", sorted(CLAUDE_THINKING_BUDGETS))
@pytest.mark.parametrize("max_tokens", [None, 5000, 40000])
def test_claude_thinks_alike_directly_and_through_bedrock(effort: str, max_tokens: int | None) -> None:
    fields: dict[str, Any] = {"reasoning_effort": effort}
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    direct = to_anthropic(request(**fields), CLAUDE_DIRECT).payload
    bedrock = build_converse_body(request(**fields), CLAUDE_BEDROCK)
    assert bedrock["additionalModelRequestFields"]["thinking"] == direct["thinking"]
    if max_tokens is None:  # both leave room for the answer beside the whole budget
        assert direct["thinking"]["budget_tokens"] == CLAUDE_THINKING_BUDGETS[effort]
        assert bedrock["inferenceConfig"]["maxTokens"] > CLAUDE_THINKING_BUDGETS[effort]
    else:
        assert bedrock["inferenceConfig"]["maxTokens"] == direct["max_tokens"] == max_tokens


def test_percent_encoded_data_urls_work_on_both() -> None:
    url = "data:image/png,%89PNG%0D%0A"
    part = {"type": "image_url", "image_url": {"url": url}}
    messages = [{"role": "user", "content": [part]}]
    encoded = base64.b64encode(b"\x89PNG\r\n").decode()
    direct = to_anthropic(request(messages=messages), CLAUDE_DIRECT).payload
    bedrock = build_converse_body(request(messages=messages), CLAUDE_BEDROCK)
    assert direct["messages"][0]["content"][0]["source"]["data"] == encoded
    assert bedrock["messages"][0]["content"][0]["image"]["source"]["bytes"] == encoded


def test_the_json_tool_is_renamed_on_a_clash_on_both() -> None:
    tools = [
        {"type": "function", "function": {"name": "json_response", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "answer", "parameters": {"type": "object"}}},
    ]
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    direct = to_anthropic(request(tools=tools, response_format=fmt), CLAUDE_DIRECT)
    bedrock = build_converse_body(request(tools=tools, response_format=fmt), CLAUDE_BEDROCK)
    # Anthropic names it json_response and Bedrock after the schema; both step aside for a client tool.
    assert direct.json_tool == "json_response_2"
    assert [tool["name"] for tool in direct.payload["tools"]][-1] == "json_response_2"
    assert [tool["toolSpec"]["name"] for tool in bedrock["toolConfig"]["tools"]][-1] == "answer_2"
