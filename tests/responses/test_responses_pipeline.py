"""``/v1/responses`` goes through the same pipeline as chat: gateway keys and their limits, hooks
(``pre_request`` may change the request, ``post_response`` sees the Response, ``on_cost``), the
shipped PII plugin, usage records and the GenAI spans (``gen_ai.operation.name`` ``chat``)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway.plugins.pii import PIIRedactionPlugin

from ..support import gateway_server

ECHO = {"providers": {"echo": {}}, "default_provider": "echo"}


class Recorder:
    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    @hookimpl
    def pre_request(self, request: Any, context: Any) -> None:
        self.seen["operation"] = context.operation
        request.instructions = "from the hook"

    @hookimpl
    def post_response(self, request: Any, response: Any, context: Any) -> None:
        self.seen["response"] = response
        self.seen["instructions"] = request.instructions

    @hookimpl
    def on_cost(self, event: Any) -> None:
        self.seen["cost"] = event


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_hooks_usage_and_spans(stream: bool) -> None:
    recorder = Recorder()
    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    gateway = Gateway(ECHO, plugins=[recorder], tracer_provider=tracer)
    with gateway_server(gateway) as (url, _), openai.OpenAI(base_url=f"{url}/v1", api_key="x") as client:
        if stream:
            with client.responses.stream(model="echo-1", input="four words right here") as events:
                response = events.get_final_response()
        else:
            response = client.responses.create(model="echo-1", input="four words right here")
    assert response.output_text == "four words right here"
    assert recorder.seen["operation"] == "chat"
    assert recorder.seen["instructions"] == "from the hook"
    assert recorder.seen["response"].id == response.id and recorder.seen["response"].output
    assert recorder.seen["cost"].completion_tokens == 4
    [record] = gateway.usage.get_by_provider("echo")
    assert record.calls == 1 and record.completion_tokens == 4
    spans = {span.name: span for span in exporter.get_finished_spans()}
    attempt = spans["chat echo-1"]
    assert attempt.attributes["gen_ai.operation.name"] == "chat"
    assert attempt.attributes["gen_ai.usage.output_tokens"] == 4
    assert attempt.attributes["gen_ai.request.stream"] is stream
    assert attempt.attributes["gen_ai.response.finish_reasons"] == ("completed",)
    assert attempt.attributes["gen_ai.response.id"] == response.id
    assert spans["gateway chat echo-1"].attributes["gen_ai.operation.name"] == "chat"


def test_pii_is_redacted_from_responses_input() -> None:
    gateway = Gateway(ECHO, plugins=[PIIRedactionPlugin()])
    items = [
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"to": "bob@example.com"}'},
        {"type": "function_call_output", "call_id": "c", "output": "sent to bob@example.com"},
        {"role": "user", "content": [{"type": "input_text", "text": "mail ann@example.com now"}]},
    ]
    with gateway_server(gateway) as (url, _):
        answer = httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": items}).json()
        stored = httpx.get(f"{url}/v1/responses/{answer['id']}").json()
    assert answer["output"][0]["content"][0]["text"] == "mail [REDACTED_EMAIL] now"
    assert "example.com" not in str(stored)  # nor in what was kept of the conversation
    assert "example.com" not in str(gateway.conversations.store._entries)  # type: ignore[attr-defined]


def test_gateway_keys_guard_every_responses_route() -> None:
    config = {
        **ECHO,
        "auth": {"keys": [{"key": "sk-gw-test-1234", "name": "team", "requests_per_minute": 2}]},
    }
    with gateway_server(config) as (url, _):
        assert httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": "x"}).status_code == 401
        headers = {"authorization": "Bearer sk-gw-test-1234"}
        made = httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": "x"}, headers=headers)
        assert made.status_code == 200
        assert httpx.get(f"{url}/v1/responses/{made.json()['id']}").status_code == 401
        assert httpx.delete(f"{url}/v1/responses/{made.json()['id']}").status_code == 401
        assert httpx.get(f"{url}/v1/responses/{made.json()['id']}", headers=headers).status_code == 200
        httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": "x"}, headers=headers)
        limited = httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": "x"}, headers=headers)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_key_token_limits_and_budgets_estimate_responses_requests() -> None:
    key = {"key": "sk-gw-test-5678", "name": "team", "tokens_per_minute": 60, "monthly_budget_usd": 5}
    config = {**ECHO, "auth": {"keys": [key]}, "pricing": {"echo:echo-1": {"input": 1, "output": 1}}}
    headers = {"authorization": "Bearer sk-gw-test-5678"}
    with gateway_server(config) as (url, _):
        small = httpx.post(f"{url}/v1/responses", json={"model": "echo-1", "input": "hi"}, headers=headers)
        assert small.status_code == 200
        big = httpx.post(
            f"{url}/v1/responses", json={"model": "echo-1", "input": "word " * 200}, headers=headers
        )
    assert big.status_code == 429 and "tokens per minute" in big.json()["error"]["message"]
