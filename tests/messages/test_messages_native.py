"""``/v1/messages`` to Claude natively: what reaches the upstream (the client's bytes, its betas and
version, the provider's key, the model renamed and nothing else), what reaches the client (the
upstream's bytes, ``x_rec_llm`` in headers only), and that limits, hooks, usage, cost and failover
work as for chat."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rec_llm_gateway import hookimpl

from .. import messages_fixtures as fixtures
from ..anthropic_fake import API_KEY, CACHE_READ, CACHE_WRITE, INPUT
from ..messages_fixtures import BEDROCK_CLAUDE, CLAUDE, GATEWAY_KEY, gateway_config, sdk
from ..messages_support import anthropic_events, claude_blocks, frame
from ..support import FakeUpstream, Reply, gateway_server

fixtures.install(globals())  # the shared fixtures: upstreams, claude, gateway_url, ...

BODY = {
    "model": CLAUDE,
    "max_tokens": 100,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello natively", "citations": None}]}
    ],
    "metadata": {"user_id": "u-7"},
    "container": "container_abc",
}


def post(url: str, body: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
    return httpx.post(
        f"{url}/v1/messages",
        content=content,
        headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01", **headers},
        timeout=10,
    )


def test_json_both_ways_byte_for_byte(gateway_url: str, claude: FakeUpstream) -> None:
    sent = json.dumps(BODY, indent=2).encode()
    response = post(
        gateway_url, sent, **{"anthropic-beta": "prompt-caching-scope-2026-01-05, effort-2025-11-24"}
    )
    assert response.status_code == 200
    upstream = claude.last
    assert upstream.body == sent
    assert upstream.headers["x-api-key"] == API_KEY
    assert GATEWAY_KEY not in json.dumps(upstream.headers)
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.headers["anthropic-beta"] == "prompt-caching-scope-2026-01-05,effort-2025-11-24"
    blocks, stop = claude_blocks(BODY)
    expected = json.dumps(fixtures_message(blocks, stop)).encode()
    assert response.content == expected
    assert "x_rec_llm" not in response.json()
    assert response.headers["x-rec-llm-provider"] == "anthropic"
    assert response.headers["x-rec-llm-attempts"] == "1"
    assert float(response.headers["x-rec-llm-cost-usd"]) > 0


def fixtures_message(blocks: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    from ..anthropic_fake import message

    return message(CLAUDE, blocks, stop)


def test_stream_byte_for_byte(gateway_url: str, claude: FakeUpstream) -> None:
    body = {**BODY, "stream": True}
    response = post(gateway_url, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks, stop = claude_blocks(body)
    assert (
        response.content == "".join(frame(event) for event in anthropic_events(CLAUDE, blocks, stop)).encode()
    )
    assert b"x_rec_llm" not in response.content


def test_a_renamed_model_changes_only_the_model(gateway_url: str, claude: FakeUpstream) -> None:
    response = post(gateway_url, {**BODY, "model": f"anthropic:{CLAUDE}"})
    assert response.status_code == 200
    assert claude.last.json == BODY  # the same request; only "model" differs from what was sent


def test_provider_betas_merge_with_the_clients(
    upstreams: dict[str, FakeUpstream], credentials: str, claude: FakeUpstream
) -> None:
    config = gateway_config(upstreams, credentials)
    config["providers"]["anthropic"]["anthropic_beta"] = ["context-1m-2025-08-07"]
    with gateway_server(config, "bare") as (url, _):
        post(url, BODY, **{"anthropic-beta": "effort-2025-11-24,context-1m-2025-08-07"})
    assert claude.last.headers["anthropic-beta"] == "context-1m-2025-08-07,effort-2025-11-24"


class Recorder:
    def __init__(self) -> None:
        self.costs: list[Any] = []
        self.responses: list[Any] = []

    @hookimpl
    def on_cost(self, event: Any) -> None:
        self.costs.append(event)

    @hookimpl
    def post_response(self, request: Any, response: Any) -> None:
        self.responses.append(response)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", [CLAUDE, f"bedrock:{BEDROCK_CLAUDE}"])
def test_usage_with_cache_is_priced_and_hooked(
    upstreams: dict[str, FakeUpstream], credentials: str, stream: bool, model: str
) -> None:
    recorder = Recorder()
    with gateway_server(gateway_config(upstreams, credentials), "fastapi", plugins=[recorder]) as (
        url,
        gateway,
    ):
        response = post(url, {**BODY, "model": model, "stream": stream})
        assert response.status_code == 200
    (event,) = recorder.costs
    assert event.prompt_tokens == INPUT + CACHE_READ + CACHE_WRITE
    assert event.cached_tokens == CACHE_READ
    assert event.completion_tokens > 0 and event.cost_usd > 0
    (answer,) = recorder.responses
    assert answer.choices[0]["finish_reason"] == "stop"
    assert answer.choices[0]["message"]["content"] == "hello natively"
    (record,) = gateway.usage.get_all()
    assert record.prompt_tokens == INPUT + CACHE_READ + CACHE_WRITE


class Redactor:
    @hookimpl
    def pre_request(self, request: Any) -> None:
        request.messages[-1].content = "[redacted]"


class Watcher:
    @hookimpl
    def pre_request(self, request: Any, context: Any) -> None:
        context.metadata["seen"] = request.model


def test_a_hook_that_changes_the_request_is_obeyed(
    upstreams: dict[str, FakeUpstream], credentials: str, claude: FakeUpstream
) -> None:
    with gateway_server(gateway_config(upstreams, credentials), "bare", plugins=[Redactor()]) as (url, _):
        response = post(url, BODY)
    assert response.status_code == 200
    sent = claude.last.json
    assert sent["messages"][-1]["content"] in ("[redacted]", [{"type": "text", "text": "[redacted]"}])
    assert "hello natively" not in claude.last.body.decode()
    assert response.json()["content"][0]["text"] == "[redacted]"
    assert response.json()["type"] == "message"


def test_a_hook_that_only_looks_keeps_the_native_bytes(
    upstreams: dict[str, FakeUpstream], credentials: str, claude: FakeUpstream
) -> None:
    sent = json.dumps(BODY).encode()
    with gateway_server(gateway_config(upstreams, credentials), "bare", plugins=[Watcher()]) as (url, _):
        assert post(url, sent).status_code == 200
    assert claude.last.body == sent


def test_failover_from_anthropic_to_bedrock_claude(
    upstreams: dict[str, FakeUpstream], credentials: str, claude: FakeUpstream
) -> None:
    models = {
        "claude-sonnet-4-5": {
            "deployments": [{"model": f"anthropic:{CLAUDE}"}, {"model": f"bedrock:{BEDROCK_CLAUDE}"}]
        }
    }
    config = gateway_config(upstreams, credentials, models=models)
    claude.reply(
        Reply(
            status=529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    )
    with gateway_server(config, "bare") as (url, _):
        message = sdk(url).messages.with_raw_response.create(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hello natively"}]
        )
    assert message.headers["x-rec-llm-attempts"] == "2"
    assert message.headers["x-rec-llm-provider"] == "bedrock"
    assert message.parse().content[0].text == "hello natively"  # type: ignore[union-attr]
    assert [request.path.split("/")[1] for request in claude.requests] == ["v1", "model"]


def test_overloaded_upstream_keeps_its_type(gateway_url: str, claude: FakeUpstream) -> None:
    claude.reply(
        Reply(
            status=529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    )
    response = post(gateway_url, BODY)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "overloaded_error"
    assert "Overloaded" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "invalid_request_error"),
        ({"model": CLAUDE, "messages": []}, 400, "invalid_request_error"),
        ({**BODY, "max_tokens": -1}, 400, "invalid_request_error"),
    ],
)
def test_bad_bodies_are_refused_in_anthropics_shape(
    gateway_url: str, body: Any, status: int, kind: str
) -> None:
    response = post(gateway_url, body)
    assert response.status_code == status
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == kind


def test_wrong_method_is_refused_in_anthropics_shape(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/v1/messages")
    assert response.status_code == 405
    assert response.json()["type"] == "error"
    assert response.headers["allow"] == "POST"


def test_bearer_auth_works_too(gateway_url: str) -> None:
    response = httpx.post(
        f"{gateway_url}/v1/messages",
        json=BODY,
        headers={"authorization": f"Bearer {GATEWAY_KEY}", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("target", ["native", "translated"])
def test_a_client_that_leaves_closes_the_upstream(
    gateway_url: str, upstreams: dict[str, FakeUpstream], target: str
) -> None:
    import time

    if target == "native":
        fake, model = upstreams["claude"], CLAUDE
        blocks, stop = claude_blocks(
            {"max_tokens": 50, "messages": [{"role": "user", "content": "a b c d e f g h"}]}
        )
        frames: list[Any] = [frame(event) for event in anthropic_events(CLAUDE, blocks, stop)]
    else:
        fake, model = upstreams["openai"], "openai:gpt-4o"
        frames = [
            {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": f"w{i} "}}]}
            for i in range(20)
        ]
    fake.reply(Reply(sse=frames, chunk_delay=0.2))
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "a b c d e f g h"}],
    }
    headers = {"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{gateway_url}/v1/messages", json=body, headers=headers, timeout=10
    ) as response:
        first = next(response.iter_bytes())
        assert first.startswith(b"event: message_start")
    deadline = time.monotonic() + 10
    while fake.closed_early == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.closed_early == 1
    assert fake.finished_streams == 0


@pytest.mark.parametrize("model", [CLAUDE, "openai:gpt-4o"], ids=["native", "translated"])
def test_spans_and_key_limits_as_for_chat(
    upstreams: dict[str, FakeUpstream], credentials: str, model: str
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = gateway_config(upstreams, credentials)
    config["auth"] = {"keys": [{"key": GATEWAY_KEY, "name": "team", "requests_per_minute": 1}]}
    with gateway_server(config, "bare", tracer_provider=tracer_provider) as (url, _):
        assert post(url, {**BODY, "model": model}).status_code == 200
        refused = post(url, {**BODY, "model": model})
    assert refused.status_code == 429
    assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in refused.headers
    attempt = next(span for span in exporter.get_finished_spans() if span.name.startswith("chat "))
    attributes = dict(attempt.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == ("anthropic" if model == CLAUDE else "openai")
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
