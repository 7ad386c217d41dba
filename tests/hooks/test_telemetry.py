"""OpenTelemetry: the span tree, GenAI attributes, metrics, trace propagation, no secrets or text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway.routing.resolve import Route

from ..conftest import GATEWAY_KEY, PROVIDER_KEY
from ..support import Reply, chunks, gateway_server, serve
from ..telemetry_support import Otel

TEXT = "distinctive-user-text-7f3a"
CHAT = {
    "model": "openai:gpt-4o-mini",
    "messages": [{"role": "user", "content": TEXT}],
    "temperature": 0.5,
    "max_tokens": 100,
    "top_p": 0.9,
    "seed": 3,
    "stop": ["END"],
}


@pytest.fixture
def otel() -> Iterator[Otel]:
    telemetry = Otel()
    yield telemetry
    telemetry.tracer_provider.shutdown()


def by_name(spans: list[ReadableSpan], prefix: str) -> ReadableSpan:
    [span] = [span for span in spans if span.name.startswith(prefix)]
    return span


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_span_tree_and_attributes(upstream, openai_config, otel: Otel, stream: bool) -> None:
    with gateway_server(openai_config, **otel.kwargs) as (url, _):
        response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": stream})
        assert response.status_code == 200
    spans = otel.spans()
    assert len(spans) == 2, "one gateway span and one attempt span; never a span per chunk"
    gateway_span = by_name(spans, "gateway chat")
    attempt = by_name(spans, "chat ")
    assert gateway_span.name == "gateway chat openai:gpt-4o-mini"
    assert attempt.name == "chat gpt-4o-mini"
    assert attempt.kind == SpanKind.CLIENT
    assert gateway_span.kind == SpanKind.SERVER
    assert attempt.parent is not None and attempt.parent.span_id == gateway_span.context.span_id
    assert attempt.context.trace_id == gateway_span.context.trace_id

    attributes = dict(attempt.attributes or {})
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.request.stream": stream,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.max_tokens": 100,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 3,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.response.finish_reasons": ("stop",),
        "server.address": "127.0.0.1",
    }
    for key, value in expected.items():
        assert attributes[key] == value, key
    assert attributes["server.port"] == int(upstream.url.rsplit(":", 1)[1])
    assert attributes["gen_ai.response.id"] in ("chatcmpl-test123", "chatcmpl-stream1")
    assert attributes["gen_ai.usage.input_tokens"] == 10
    assert attributes["gen_ai.usage.output_tokens"] == (1 if stream else 5)
    assert "error.type" not in attributes

    request_attributes = dict(gateway_span.attributes or {})
    assert request_attributes["rec_llm.attempts"] == 1
    assert request_attributes["rec_llm.cost_usd"] > 0
    assert request_attributes["rec_llm.request_id"] == response.headers["x-request-id"]
    assert request_attributes["http.response.status_code"] == 200
    assert request_attributes["gen_ai.request.model"] == "openai:gpt-4o-mini"


def test_metrics_and_bucket_boundaries(upstream, openai_config, otel: Otel) -> None:
    with gateway_server(openai_config, **otel.kwargs) as (url, _):
        httpx.post(f"{url}/v1/chat/completions", json=CHAT)
        httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": True})
    metrics = otel.metrics()
    for name in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "rec_llm.gateway.cost",
        "rec_llm.gateway.requests",
        "rec_llm.gateway.overhead",
    ):
        assert name in metrics, name
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    [point] = duration.data.data_points
    assert point.count == 2
    assert list(point.explicit_bounds) == [
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    ]
    assert dict(point.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "server.address": "127.0.0.1",
        "server.port": int(upstream.url.rsplit(":", 1)[1]),
    }
    tokens = metrics["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    by_type = {dict(p.attributes)["gen_ai.token.type"]: p for p in tokens.data.data_points}
    assert by_type["input"].sum == 20
    assert by_type["output"].sum == 6
    assert list(by_type["input"].explicit_bounds)[:3] == [1, 4, 16]
    [first_chunk] = metrics["gen_ai.client.operation.time_to_first_chunk"].data.data_points
    assert first_chunk.count == 1  # streams only
    [requests] = metrics["rec_llm.gateway.requests"].data.data_points
    assert requests.value == 2
    assert dict(requests.attributes)["rec_llm.outcome"] == "success"
    [cost] = metrics["rec_llm.gateway.cost"].data.data_points
    assert cost.value > 0
    assert metrics["rec_llm.gateway.overhead"].unit == "s"
    # low cardinality: no request ids or user text on any metric
    text = otel.reader.get_metrics_data().to_json()
    assert "req_" not in text
    assert TEXT not in text


def test_errors_are_marked(upstream, openai_config, otel: Otel) -> None:
    with gateway_server(openai_config, **otel.kwargs) as (url, _):
        upstream.reply(Reply(status=500, json={"error": {"message": "boom"}}))
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 502
    spans = otel.spans()
    attempt = by_name(spans, "chat ")
    gateway_span = by_name(spans, "gateway chat")
    assert attempt.attributes["error.type"] == "upstream_error"
    assert attempt.status.status_code == StatusCode.ERROR
    assert gateway_span.attributes["error.type"] == "upstream_error"
    assert gateway_span.attributes["http.response.status_code"] == 502
    [point] = otel.metrics()["gen_ai.client.operation.duration"].data.data_points
    assert dict(point.attributes)["error.type"] == "upstream_error"
    [requests] = otel.metrics()["rec_llm.gateway.requests"].data.data_points
    assert dict(requests.attributes)["rec_llm.outcome"] == "error"


def test_inbound_traceparent_is_joined_and_propagated(upstream, openai_config, otel: Otel) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent_id = "b7ad6b7169203331"
    with gateway_server(openai_config, **otel.kwargs) as (url, _):
        httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
        )
    gateway_span = by_name(otel.spans(), "gateway chat")
    attempt = by_name(otel.spans(), "chat ")
    assert format(gateway_span.context.trace_id, "032x") == trace_id
    assert format(gateway_span.parent.span_id, "016x") == parent_id
    # the upstream received the attempt span's context
    sent = upstream.last.headers["traceparent"]
    assert sent == f"00-{trace_id}-{format(attempt.context.span_id, '016x')}-01"


def test_under_the_host_apps_span(upstream, openai_config, otel: Otel) -> None:
    gateway = Gateway(openai_config, **otel.kwargs)
    tracer = otel.tracer_provider.get_tracer("host")

    async def host(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await gateway(scope, receive, send)
        with tracer.start_as_current_span("host request", kind=SpanKind.SERVER):
            await gateway(scope, receive, send)
        return None

    with serve(host) as url:
        httpx.post(f"{url}/v1/chat/completions", json=CHAT)
    host_span = by_name(otel.spans(), "host request")
    gateway_span = by_name(otel.spans(), "gateway chat")
    assert gateway_span.kind == SpanKind.INTERNAL
    assert gateway_span.parent.span_id == host_span.context.span_id


def test_failover_is_on_the_span_and_counted(upstream, openai_config, otel: Otel) -> None:
    config = {
        "providers": {
            "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
            "openai": openai_config["providers"]["openai"],
        }
    }
    gateway = Gateway(config, **otel.kwargs)
    routes = [Route(gateway.providers[name], "gpt-4o-mini", "gpt-4o-mini") for name in ("dead", "openai")]
    gateway.router.candidates = lambda request: routes  # type: ignore[method-assign]
    with gateway_server(gateway) as (url, _):
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 200
    spans = otel.spans()
    attempts = [span for span in spans if span.name == "chat gpt-4o-mini"]
    assert len(attempts) == 2
    assert attempts[0].attributes["error.type"] == "upstream_unreachable"
    gateway_span = by_name(spans, "gateway chat")
    assert gateway_span.attributes["rec_llm.attempts"] == 2
    [event] = [event for event in gateway_span.events if event.name == "rec_llm.failover"]
    assert event.attributes["from"] == "dead:gpt-4o-mini"
    [failovers] = otel.metrics()["rec_llm.gateway.failovers"].data.data_points
    assert failovers.value == 1
    assert dict(failovers.attributes) == {
        "rec_llm.from": "dead",
        "rec_llm.to": "openai",
        "rec_llm.reason": "upstream_unreachable",
    }


def test_hook_failures_are_recorded_on_the_span(upstream, openai_config, otel: Otel) -> None:
    class Broken:
        @hookimpl
        def pre_request(self):
            raise ValueError("plugin exploded")

    with gateway_server(openai_config, plugins=[Broken()], **otel.kwargs) as (url, _):
        assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 200
    gateway_span = by_name(otel.spans(), "gateway chat")
    [event] = [event for event in gateway_span.events if event.name == "rec_llm.hook_error"]
    assert event.attributes["rec_llm.hook"] == "pre_request"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["rec_llm.plugin"].endswith("Broken")


def test_no_secrets_and_no_content_by_default(upstream, openai_config, otel: Otel) -> None:
    config = {**openai_config, "auth": {"api_keys": [GATEWAY_KEY]}}
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    with gateway_server(config, **otel.kwargs) as (url, _):
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers)
        httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers)
        upstream.reply(Reply(status=401, json={"error": {"message": f"bad key {PROVIDER_KEY}"}}))
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers)
    text = otel.exported_text()
    assert PROVIDER_KEY not in text
    assert GATEWAY_KEY not in text
    assert TEXT not in text
    assert "gen_ai.input.messages" not in text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_content_capture_when_enabled(upstream, openai_config, otel: Otel, stream: bool) -> None:
    config = {**openai_config, "telemetry": {"capture_content": True}}
    if stream:
        upstream.reply(Reply(sse=chunks([TEXT[:10], TEXT[10:]])))
    with gateway_server(config, **otel.kwargs) as (url, _):
        httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": stream})
    attempt = by_name(otel.spans(), "chat ")
    assert json.loads(attempt.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": TEXT}]
    # a stream's text is assembled for the span (it is not otherwise kept)
    assert TEXT in attempt.attributes["gen_ai.output.messages"]


def test_no_sdk_means_no_op(upstream, openai_config) -> None:
    # with the API alone (the global proxy provider), nothing breaks and nothing is recorded
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    with gateway_server(openai_config) as (url, _):
        assert (
            httpx.post(
                f"{url}/v1/chat/completions", json=CHAT, headers={"traceparent": "garbage"}
            ).status_code
            == 200
        )
