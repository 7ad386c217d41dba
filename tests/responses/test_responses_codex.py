"""What Codex CLI sends (the shape recorded from ``codex exec`` 0.171.0, trimmed): a streamed request
with developer messages carrying ids, function tools, a ``namespace`` tool and ``web_search``,
``store: false``, ``include``, ``prompt_cache_key`` and ``client_metadata``; then a second turn that
resends the whole conversation, function call and output included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ..responses_fake import API_KEY as OPENAI_KEY
from ..responses_fake import responses_upstream
from ..support import FakeUpstream, gateway_server, serve_fake

EXEC = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command in a PTY.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {"type": "function", "name": "close_agent", "parameters": {"type": "object", "properties": {}}}
    ],
}


def codex_body(model: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": model,
        "stream": True,
        "input": [
            {
                "type": "message",
                "id": "msg_d2104257-b96e-5c96-8700-60775f47b60f",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "You are a coding agent running in the Codex CLI."}
                ],
            },
            {
                "type": "message",
                "id": "msg_01a2424a-78aa-70f1-a7e1-aa6bdb8484e5",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<environment_context><cwd>/tmp</cwd></environment_context>",
                    }
                ],
            },
            *items,
        ],
        "tools": [EXEC, NAMESPACE, {"type": "web_search", "external_web_access": False}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "01a2424a-7875-7ca3-8014-64ccfd06d453",
        "client_metadata": {"thread_id": "01a2424a", "turn_id": "01a2424a-7885"},
    }


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The SSE events of a Responses stream; each ``event:`` name must match its ``type``."""
    found = []
    for frame in response.text.split("\n\n"):
        if not frame.strip():
            continue
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        event = json.loads(lines["data"])
        assert lines["event"] == event["type"]
        found.append(event)
    return found


@pytest.fixture(scope="module")
def native() -> Iterator[FakeUpstream]:
    with serve_fake(responses_upstream) as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway_url(native: FakeUpstream) -> Iterator[str]:
    config = {
        "providers": {"echo": {}, "openai": {"api_key": OPENAI_KEY, "base_url": f"{native.url}/v1"}},
        "default_provider": "echo",
    }
    with gateway_server(config, "bare") as (url, _):
        yield url


def test_codex_turn_on_echo(gateway_url: str) -> None:
    prompt = {
        "type": "message",
        "id": "msg_3",
        "role": "user",
        "content": [{"type": "input_text", "text": "say hi"}],
    }
    response = httpx.post(f"{gateway_url}/v1/responses", json=codex_body("echo-1", [prompt]), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-rec-llm-dropped-tools"] == "namespace:multi_agent_v1, web_search"
    found = events(response)
    assert found[-1]["type"] == "response.completed"
    assert found[-1]["response"]["output"][0]["content"][0]["text"] == "say hi"
    assert found[-1]["response"]["store"] is False


def test_codex_second_turn_resends_the_conversation(gateway_url: str) -> None:
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-opaque"},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "exec_command",
            "arguments": '{"cmd":"ls"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "README.md"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
    ]
    response = httpx.post(f"{gateway_url}/v1/responses", json=codex_body("echo-1", items), timeout=30)
    assert response.status_code == 200
    assert events(response)[-1]["response"]["output"][0]["content"][0]["text"] == "thanks"


def test_codex_request_passes_through_to_openai(gateway_url: str, native: FakeUpstream) -> None:
    prompt = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]}
    response = httpx.post(
        f"{gateway_url}/v1/responses", json=codex_body("openai:gpt-5-codex", [prompt]), timeout=30
    )
    assert response.status_code == 200 and "x-rec-llm-dropped-tools" not in response.headers
    output = events(response)[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[1]["content"][0]["text"] == "say hi"
    sent = native.last.json
    assert sent["model"] == "gpt-5-codex"
    assert sent["client_metadata"] == {"thread_id": "01a2424a", "turn_id": "01a2424a-7885"}
    assert [tool["type"] for tool in sent["tools"]] == ["function", "namespace", "web_search"]
    assert sent["include"] == ["reasoning.encrypted_content"] and sent["store"] is False
