"""The shipped plugins: PII redaction and the JSON-lines audit log."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway.plugins.audit import AuditLogPlugin
from rec_llm_gateway.plugins.pii import PIIRedactionPlugin

from ..support import Reply, chunks, gateway_server

SECRET_TEXT = (
    "Mail jane.doe@example.com or call +1 (555) 123-4567; card 4111 1111 1111 1111, order 1234567890123."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to a.b-c@mail.example.org today", "write to [REDACTED_EMAIL] today"),
        ("card 4111-1111-1111-1111 ok", "card [REDACTED_CARD] ok"),
        (
            "card 4111111111111112 is not a valid number",
            "card 4111111111111112 is not a valid number",
        ),  # Luhn fails
        ("ring 555-123-4567 or +44 20 7946 0958", "ring [REDACTED_PHONE] or [REDACTED_PHONE]"),
        ("(555) 123-4567", "[REDACTED_PHONE]"),
        ("the year 2024 and version 1.2.3 stay", "the year 2024 and version 1.2.3 stay"),
    ],
)
def test_redaction_rules(text: str, expected: str) -> None:
    assert PIIRedactionPlugin().redact(text) == expected


def test_custom_patterns() -> None:
    only = PIIRedactionPlugin({"employee": r"EMP-\d{6}"}, replace_defaults=True, placeholder="<{name}>")
    assert only.redact("EMP-123456 wrote to x@y.io") == "<EMPLOYEE> wrote to x@y.io"
    both = PIIRedactionPlugin({"employee": r"EMP-\d{6}"})
    assert both.redact("EMP-123456 wrote to x@y.io") == "[REDACTED_EMPLOYEE] wrote to [REDACTED_EMAIL]"


@pytest.mark.parametrize("stream", [False, True])
def test_requests_are_redacted_before_they_leave(upstream, openai_config, stream: bool) -> None:
    seen = []

    class Later:  # registered first, but redaction runs before it (tryfirst)
        @hookimpl
        def pre_request(self, request, context):
            seen.append((request.messages[0].content, dict(context.metadata)))

    body = {
        "model": "openai:gpt-4o-mini",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "The user's email is boss@corp.example"},
            {"role": "user", "content": [{"type": "text", "text": SECRET_TEXT}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"email": "jane.doe@example.com"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "found +1 555 123 4567"},
        ],
    }
    with gateway_server(openai_config, plugins=[Later(), PIIRedactionPlugin()]) as (url, _):
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200
    sent = json.dumps(upstream.last.json)
    for secret in ("boss@corp.example", "jane.doe@example.com", "555", "4111"):
        assert secret not in sent
    assert "order 1234567890123" in sent  # not a valid card number: kept
    messages = upstream.last.json["messages"]
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"email": "[REDACTED_EMAIL]"}
    assert seen[0][0] == "The user's email is [REDACTED_EMAIL]"
    assert seen[0][1]["pii_redactions"] == {"email": 3, "card": 1, "phone": 2}


def test_audit_log_lines(upstream, openai_config, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLogPlugin(path)
    config = {**openai_config, "auth": {"api_keys": ["gw-audit-key-1"]}}
    headers = {"authorization": "Bearer gw-audit-key-1"}
    chat = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "top secret words"}]}
    with gateway_server(config, plugins=[audit]) as (url, _):
        ok = httpx.post(f"{url}/v1/chat/completions", json=chat, headers=headers)
        httpx.post(f"{url}/v1/chat/completions", json={**chat, "stream": True}, headers=headers)
        upstream.reply(Reply(status=429, json={"error": {"message": "slow down"}}))
        httpx.post(f"{url}/v1/chat/completions", json=chat, headers=headers)
        httpx.post(f"{url}/v1/chat/completions", json=chat)  # no key
        upstream.reply(Reply(sse=chunks([f"w{i}" for i in range(100)]), chunk_delay=0.05))
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json={**chat, "stream": True}, headers=headers
        ) as response:
            next(response.iter_lines())
        deadline = time.monotonic() + 5
        while len(path.read_text().splitlines()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    audit.close()
    text = path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["outcome"], line["status"], line["stream"]) for line in lines] == [
        ("success", 200, False),
        ("success", 200, True),
        ("error", 429, False),
        ("rejected", 401, False),
        ("client_disconnected", 499, True),
    ]
    first = lines[0]
    assert first["request_id"] == ok.headers["x-request-id"]
    assert first["gateway_key_id"].startswith("key-")
    assert (first["provider"], first["model"], first["requested_model"]) == (
        "openai",
        "gpt-4o-mini",
        "openai:gpt-4o-mini",
    )
    assert first["total_tokens"] == 15
    assert first["cost_usd"] > 0
    assert first["latency_ms"] > 0
    assert first["attempts"] == 1
    assert lines[2]["error"]["message"] == "slow down"
    assert "top secret" not in text  # no content by default
    assert "gw-audit-key-1" not in text


def test_audit_log_with_content() -> None:
    stream = io.StringIO()
    gateway = Gateway({"providers": {"echo": {}}}, plugins=[AuditLogPlugin(stream, include_content=True)])
    with gateway_server(gateway) as (url, _):
        httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "echo:m", "messages": [{"role": "user", "content": "keep me"}]},
        )
    [line] = [json.loads(item) for item in stream.getvalue().splitlines()]
    assert line["messages"] == [{"role": "user", "content": "keep me"}]
    assert line["response"][0]["content"] == "keep me"
    assert line["cost_usd"] == 0.0


def test_every_operation_is_redacted() -> None:
    """Embeddings inputs, legacy prompts and Anthropic Messages (system, text and tool results) are
    redacted like chat messages; token ids are left as they are."""
    from rec_llm_gateway.hooks import RequestContext
    from rec_llm_gateway.messages.wire import MessagesRequest
    from rec_llm_gateway.schema_completions import CompletionRequest
    from rec_llm_gateway.schema_embeddings import EmbeddingRequest

    plugin = PIIRedactionPlugin()
    email = "jane.doe@example.com"
    embeddings = EmbeddingRequest.from_json(json.dumps({"model": "m", "input": ["a", email]}).encode())
    plugin.pre_request(embeddings, RequestContext(request_id="r", headers={}))
    assert embeddings.input == ["a", "[REDACTED_EMAIL]"]
    tokens = EmbeddingRequest.from_json(b'{"model": "m", "input": [1, 2, 3]}')
    plugin.pre_request(tokens, RequestContext(request_id="r", headers={}))
    assert tokens.input == [1, 2, 3]
    completion = CompletionRequest.from_json(json.dumps({"model": "m", "prompt": email}).encode())
    plugin.pre_request(completion, RequestContext(request_id="r", headers={}))
    assert completion.prompt == "[REDACTED_EMAIL]"
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "system": [{"type": "text", "text": f"user {email}"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": email}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": email}]},
        ],
    }
    messages = MessagesRequest.from_json(json.dumps(body).encode())
    context = RequestContext(request_id="r", headers={})
    plugin.pre_request(messages, context)
    assert email not in messages.model_dump_json()
    assert context.metadata["pii_redactions"] == {"email": 3}
