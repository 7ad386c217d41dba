"""OpenAI, OpenAI-compatible presets, Azure and OpenRouter: what goes upstream (httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.errors import (
    BadGatewayError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
)
from rec_llm_gateway.providers.base import UpstreamCall
from rec_llm_gateway.schema import ChatCompletionRequest

from ..conftest import PROVIDER_KEY, SECOND_KEY
from ..support import Reply, completion


def make_call(
    provider_model: str, body: dict[str, Any], handler: Any, *, stream: bool = False
) -> UpstreamCall:
    request = ChatCompletionRequest.model_validate(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}], **body}
    )
    return UpstreamCall(
        request=request,
        model=provider_model,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        request_id="req_1",
        stream=stream,
    )


class Recorder:
    def __init__(self, response: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.response = response or httpx.Response(200, json=completion())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def body(self) -> Any:
        return json.loads(self.requests[-1].content)


async def test_unknown_parameters_pass_through_untouched() -> None:
    gateway = Gateway({"providers": {"openai": {"api_key": PROVIDER_KEY}}})
    recorder = Recorder()
    body = {
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "object"}},
        },
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 3,
        "n": 2,
        "user": "u-1",
        "metadata": {"a": "b"},
        "reasoning_effort": "low",
        "some_future_param": {"nested": [1, 2, 3]},
        "messages": [
            {"role": "developer", "content": "be brief", "name": "dev"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
    }
    call = make_call("gpt-4o", body, recorder)
    await gateway.providers["openai"].complete(call)
    sent = recorder.body
    assert sent == {**body, "model": "gpt-4o"}
    assert recorder.requests[-1].url == "https://api.openai.com/v1/chat/completions"


async def test_keys_rotate_and_headers_are_the_providers_own() -> None:
    gateway = Gateway(
        {
            "providers": {
                "openai": {
                    "api_keys": [PROVIDER_KEY, SECOND_KEY],
                    "headers": {"X-Team": "ml"},
                    "organization": "org-1",
                }
            }
        }
    )
    recorder = Recorder()
    provider = gateway.providers["openai"]
    for _ in range(3):
        await provider.complete(make_call("gpt-4o", {}, recorder))
    keys = [request.headers["authorization"] for request in recorder.requests]
    assert keys == [f"Bearer {PROVIDER_KEY}", f"Bearer {SECOND_KEY}", f"Bearer {PROVIDER_KEY}"]
    assert recorder.requests[0].headers["x-team"] == "ml"
    assert recorder.requests[0].headers["openai-organization"] == "org-1"


async def test_no_key_sends_no_authorization() -> None:
    gateway = Gateway({"providers": {"local": {"type": "vllm", "base_url": "http://127.0.0.1:9/v1"}}})
    recorder = Recorder()
    await gateway.providers["local"].complete(make_call("m", {}, recorder))
    assert "authorization" not in recorder.requests[-1].headers


def test_model_map_and_presets() -> None:
    gateway = Gateway(
        {"providers": {"groq": {"api_key": "k", "model_map": {"fast": "llama-3.1-8b-instant"}}, "ollama": {}}}
    )
    assert gateway.providers["groq"].base_url == "https://api.groq.com/openai/v1"
    assert gateway.resolver.resolve("fast").model == "llama-3.1-8b-instant"
    assert gateway.providers["ollama"].base_url == "http://localhost:11434/v1"


async def test_azure_deployment_url_and_key() -> None:
    gateway = Gateway(
        {
            "providers": {
                "azure": {
                    "api_key": PROVIDER_KEY,
                    "base_url": "https://res.openai.azure.com/",
                    "api_version": "2024-10-21",
                    "deployments": {"gpt-4o": "prod gpt4o"},
                }
            }
        }
    )
    route = gateway.resolver.resolve("gpt-4o")
    assert (route.provider.name, route.model) == ("azure", "prod gpt4o")
    recorder = Recorder()
    await route.provider.complete(make_call(route.model, {}, recorder))
    request = recorder.requests[-1]
    assert (
        str(request.url)
        == "https://res.openai.azure.com/openai/deployments/prod%20gpt4o/chat/completions?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == PROVIDER_KEY
    assert "authorization" not in request.headers


async def test_azure_entra_token_auth() -> None:
    gateway = Gateway(
        {
            "providers": {
                "azure": {
                    "api_key": "entra-token",
                    "auth": "entra",
                    "base_url": "https://r.openai.azure.com",
                    "api_version": "2024-10-21",
                }
            }
        }
    )
    recorder = Recorder()
    await gateway.providers["azure"].complete(make_call("d", {}, recorder))
    assert recorder.requests[-1].headers["authorization"] == "Bearer entra-token"


async def test_openrouter_attribution_headers() -> None:
    gateway = Gateway(
        {
            "providers": {
                "openrouter": {
                    "api_key": "or-key",
                    "http_referer": "https://app.example",
                    "x_title": "My App",
                }
            }
        }
    )
    recorder = Recorder()
    await gateway.providers["openrouter"].complete(make_call("anthropic/claude-sonnet-4", {}, recorder))
    request = recorder.requests[-1]
    assert str(request.url) == "https://openrouter.ai/api/v1/chat/completions"
    assert request.headers["http-referer"] == "https://app.example"
    assert request.headers["x-title"] == "My App"
    assert recorder.body["model"] == "anthropic/claude-sonnet-4"


@pytest.mark.parametrize(
    ("response", "error", "status"),
    [
        (
            httpx.Response(
                401,
                json={
                    "error": {
                        "message": f"Incorrect API key provided: {PROVIDER_KEY}",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            ),
            UpstreamError,
            401,
        ),
        (
            httpx.Response(429, json={"error": {"message": "rate"}}, headers={"retry-after": "12"}),
            RateLimitError,
            429,
        ),
        (httpx.Response(503, text="upstream down"), BadGatewayError, 502),
        (httpx.Response(200, text="not json"), BadGatewayError, 502),
    ],
)
async def test_upstream_errors_map_and_scrub(response: httpx.Response, error: type, status: int) -> None:
    gateway = Gateway({"providers": {"openai": {"api_key": PROVIDER_KEY}}})
    with pytest.raises(error) as raised:
        await gateway.providers["openai"].complete(make_call("gpt-4o", {}, Recorder(response)))
    assert raised.value.status_code == status
    assert PROVIDER_KEY not in raised.value.message
    if status == 429:
        assert raised.value.headers["retry-after"] == "12"


async def test_timeouts_and_connection_errors_map() -> None:
    gateway = Gateway({"providers": {"openai": {"api_key": PROVIDER_KEY}}})

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamTimeoutError):
        await gateway.providers["openai"].complete(make_call("m", {}, timeout))
    with pytest.raises(UpstreamUnreachableError) as raised:
        await gateway.providers["openai"].complete(make_call("m", {}, refused))
    assert raised.value.code == "upstream_unreachable"


def test_provider_health_route(upstream, openai_config) -> None:
    from ..support import gateway_server

    config = {
        **openai_config,
        "providers": {
            **openai_config["providers"],
            "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
        },
    }
    with gateway_server(config) as (url, _):
        healthy = httpx.get(f"{url}/providers/openai/health").json()
        assert healthy["status"] == "healthy"
        assert healthy["error"] is None
        assert healthy["latency_ms"] > 0
        assert upstream.last.path == "/v1/models"
        assert upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        upstream.reply(Reply(status=401, json={"error": {"message": f"bad key {PROVIDER_KEY}"}}))
        unhealthy = httpx.get(f"{url}/providers/openai/health").json()
        assert unhealthy["status"] == "unhealthy"
        assert "bad key" in unhealthy["error"]
        assert PROVIDER_KEY not in unhealthy["error"]
        dead = httpx.get(f"{url}/providers/dead/health").json()
        assert (dead["status"], "connect" in dead["error"]) == ("unhealthy", True)


async def test_azure_health_check() -> None:
    gateway = Gateway(
        {
            "providers": {
                "azure": {
                    "api_key": PROVIDER_KEY,
                    "base_url": "https://r.openai.azure.com",
                    "api_version": "2024-10-21",
                }
            }
        }
    )
    recorder = Recorder(httpx.Response(200, json={"data": []}))
    await gateway.providers["azure"].check_health(httpx.AsyncClient(transport=httpx.MockTransport(recorder)))
    assert str(recorder.requests[-1].url) == "https://r.openai.azure.com/openai/models?api-version=2024-10-21"
    assert recorder.requests[-1].headers["api-key"] == PROVIDER_KEY
