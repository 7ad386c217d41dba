"""What real clients and OpenAI's published spec found (issue 12, item 6), one test each.

(Also: ``refusal: null`` on Gemini / Vertex / Azure messages is asserted where those translations are
tested: test_gemini_response.py, test_gemini_replay.py, test_traffic_openai_azure.py; the 403 for a
gateway key on ``/usage`` in test_secrets_auth_cors.py; check-config in test_cli.py.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.cli import main
from rec_llm_gateway.usage import TokenUsage

from ..support import TRAFFIC_BESIDE_CHECKOUT, gateway_server, traffic_dir

KEY = "gw-key-0000001"
ADMIN = "admin-key-0000001"
CONFIG: dict[str, Any] = {
    "providers": {
        "echo": {"type": "echo"},
        "openai": {"api_key": "sk-test-0000000000", "models": ["gpt-4o"]},
    },
    "default_provider": "echo",
    "models": {"smart": {"deployments": [{"model": "echo:echo-1"}]}},
}
CHAT = {"model": "echo:hi", "messages": [{"role": "user", "content": "one two three"}]}


def call(gateway: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


# -- x-request-id on every route --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/chat/completions", 200),
        ("GET", "/v1/chat/completions", 405),
        ("GET", "/no/such/route", 404),
        ("GET", "/v1/models", 200),
        ("GET", "/v1/models/echo:echo-1", 200),
        ("GET", "/v1/models/nope:x", 404),
        ("GET", "/health", 200),
        ("GET", "/providers", 200),
        ("GET", "/providers/echo/health", 200),
        ("GET", "/providers/echo/stats", 200),
        ("GET", "/providers/nope/stats", 404),
        ("GET", "/usage", 200),
        ("GET", "/usage?date=yesterday", 400),
        ("GET", "/openapi.json", 200),
        ("DELETE", "/health", 405),
    ],
)
def test_every_response_carries_x_request_id(method: str, path: str, status: int) -> None:
    gateway = Gateway(CONFIG)
    body = {"json": CHAT} if method == "POST" else {}
    answer = call(gateway, method, path, **body)
    assert answer.status_code == status, answer.text
    assert answer.headers["x-request-id"].startswith("req_")
    given = call(gateway, method, path, headers={"x-request-id": "client-id-1"}, **body)
    assert given.headers["x-request-id"] == "client-id-1"


def test_x_request_id_on_auth_errors_and_preflights() -> None:
    gateway = Gateway(
        {**CONFIG, "auth": {"api_keys": [KEY]}, "cors": {"allow_origins": ["https://a.example"]}}
    )
    assert "x-request-id" in call(gateway, "GET", "/v1/models").headers  # 401
    preflight = call(
        gateway,
        "OPTIONS",
        "/v1/chat/completions",
        headers={"origin": "https://a.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204 and "x-request-id" in preflight.headers


# -- GET /v1/models/{id} answers for every name chat would route ------------------------------------


@pytest.mark.parametrize(
    ("model", "owned_by"),
    [
        ("echo:echo-1", "echo"),  # provider:model
        ("openai:gpt-4o", "openai"),  # listed
        ("openai:gpt-4.1-not-listed", "openai"),  # provider:model, not listed: chat still routes it
        ("gpt-4o", "openai"),  # a provider's `models`
        ("gpt-5-mini", "openai"),  # a family prefix
        ("anything-at-all", "echo"),  # default_provider
        ("smart", "rec-llm-gateway"),  # a group
    ],
)
def test_models_retrieve_answers_what_chat_routes(model: str, owned_by: str) -> None:
    gateway = Gateway(CONFIG)
    answer = call(gateway, "GET", f"/v1/models/{model}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == model
    assert answer.json()["owned_by"] == owned_by
    if owned_by in ("echo", "rec-llm-gateway"):  # echo answers: the chat route agrees
        assert call(gateway, "POST", "/v1/chat/completions", json={**CHAT, "model": model}).status_code == 200


@pytest.mark.parametrize("model", ["nope:gpt-4o", "openai:", "a::b"])
def test_models_retrieve_is_404_for_what_chat_refuses(model: str) -> None:
    gateway = Gateway(CONFIG)
    answer = call(gateway, "GET", f"/v1/models/{model}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    assert call(gateway, "POST", "/v1/chat/completions", json={**CHAT, "model": model}).status_code in (
        400,
        404,
    )


def test_models_retrieve_without_default_provider_is_404_for_unclaimed_names() -> None:
    gateway = Gateway(
        {"providers": {"a": {"type": "echo", "models": ["e1"]}, "b": {"type": "echo", "models": ["e2"]}}}
    )
    assert call(gateway, "GET", "/v1/models/e1").status_code == 200
    assert call(gateway, "GET", "/v1/models/unclaimed").status_code == 404
    assert (
        call(gateway, "POST", "/v1/chat/completions", json={**CHAT, "model": "unclaimed"}).status_code == 404
    )


# -- echo honours n; out-of-range parameters are a 400 naming the parameter -------------------------


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with gateway_server({"providers": {"echo": {"type": "echo"}}}) as (url, _):
        yield url


def test_echo_honours_n(echo_url: str) -> None:
    client = openai.OpenAI(base_url=f"{echo_url}/v1", api_key="unused")
    answer = client.chat.completions.create(
        model="echo:e", messages=[{"role": "user", "content": "a b"}], n=3
    )
    assert [choice.index for choice in answer.choices] == [0, 1, 2]
    assert {choice.message.content for choice in answer.choices} == {"a b"}
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    stream = client.chat.completions.create(
        model="echo:e", messages=[{"role": "user", "content": "a b"}], n=2, stream=True
    )
    texts: dict[int, str] = {}
    finished = set()
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.add(choice.index)
    assert texts == {0: "a b", 1: "a b"} and finished == {0, 1}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n", 0),
        ("n", 129),
        ("max_tokens", 0),
        ("max_tokens", -1),
        ("max_completion_tokens", 0),
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("top_p", -0.5),
        ("top_p", 1.5),
        ("presence_penalty", 2.5),
        ("frequency_penalty", -3),
        ("top_logprobs", 21),
    ],
)
def test_out_of_range_parameters_are_400_naming_the_parameter(
    echo_url: str, param: str, value: float
) -> None:
    client = openai.OpenAI(base_url=f"{echo_url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="echo:e", messages=[{"role": "user", "content": "x"}], **{param: value}
        )
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["param"] == param
    assert error["code"] == "invalid_value"
    assert f"'{param}'" in error["message"]


@pytest.mark.parametrize(
    ("param", "value"),
    [("n", 1), ("n", 128), ("temperature", 0), ("temperature", 2), ("top_p", 0), ("top_p", 1)],
)
def test_boundary_values_are_accepted(echo_url: str, param: str, value: float) -> None:
    body = {"model": "echo:e", "messages": [{"role": "user", "content": "x"}], param: value}
    assert httpx.post(f"{echo_url}/v1/chat/completions", json=body).status_code == 200


# -- the recorded traffic is found without REC_LLM_TRAFFIC_DIR ---------------------------------------


def test_traffic_dir_defaults_to_the_folder_beside_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REC_LLM_TRAFFIC_DIR", raising=False)
    expected = TRAFFIC_BESIDE_CHECKOUT if TRAFFIC_BESIDE_CHECKOUT.is_dir() else None
    assert traffic_dir() == expected
    assert TRAFFIC_BESIDE_CHECKOUT.parts[-3:] == ("shared", "reference", "traffic")
    monkeypatch.setenv("REC_LLM_TRAFFIC_DIR", "")
    assert traffic_dir() is None
    monkeypatch.setenv("REC_LLM_TRAFFIC_DIR", str(tmp_path))
    assert traffic_dir() == tmp_path
    monkeypatch.setenv("REC_LLM_TRAFFIC_DIR", str(tmp_path / "missing"))
    assert traffic_dir() is None


def test_usage_records_keep_operations_apart() -> None:
    gateway = Gateway({**CONFIG, "auth": {"api_keys": [KEY], "admin_keys": [ADMIN]}})
    assert (
        call(gateway, "POST", "/v1/chat/completions", json=CHAT, headers={"x-api-key": KEY}).status_code
        == 200
    )
    gateway.usage.record(
        provider="echo",
        model="hi",
        usage=None,
        cost_usd=None,
        latency_ms=1,
        error=False,
        operation="embeddings",
    )
    records = {(record.model, record.operation): record.calls for record in gateway.usage.get_all()}
    assert records == {("hi", "chat"): 1, ("hi", "embeddings"): 1}
    report = call(gateway, "GET", "/usage?operation=chat", headers={"x-api-key": ADMIN}).json()
    assert [(entry["operation"], entry["calls"]) for entry in report["data"]] == [("chat", 1)]
    assert (
        json.loads(call(gateway, "GET", "/usage", headers={"x-api-key": ADMIN}).text)["totals"]["calls"] == 2
    )


# -- check-config reports every mistake at once -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # unset environment variables
            "providers:\n  openai: {api_key: '${UNSET_ONE_X}'}\n  groq: {api_key: '${UNSET_TWO_X}'}\n",
            ["providers.openai.api_key: environment variable UNSET_ONE_X", "UNSET_TWO_X"],
        ),
        (  # field errors
            "providers:\n  echo: {timeout: -1}\nlimits: {max_body_bytes: nope}\ncors: {allow_origins: 3}\n",
            ["providers.echo.timeout", "limits.max_body_bytes", "cors.allow_origins"],
        ),
        (  # references
            "providers:\n  echo: {}\ndefault_provider: ghost\n"
            "models:\n  g: {deployments: [{model: 'nope:m'}]}\n  a: {alias: b}\n  b: {alias: a}\n"
            "routing:\n  fallbacks: {g: ['also-nope:x']}\n",
            [
                "default_provider: 'ghost'",
                "models.g.deployments[0].model: provider 'nope'",
                "models.a.alias: aliases form a cycle",
                "routing.fallbacks.g[0]: 'also-nope:x'",
            ],
        ),
        (  # provider types and their own settings
            "providers:\n  x: {type: martian}\n  y: {type: venusian}\n"
            "  azure: {base_url: 'https://x.openai.azure.com'}\n",
            [
                "unknown provider type 'martian'",
                "unknown provider type 'venusian'",
                "providers.azure.api_version: required for type 'azure'",
            ],
        ),
    ],
    ids=["environment", "fields", "references", "types"],
)
def test_check_config_reports_every_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    assert main(["check-config", str(config)]) == 2
    error = capsys.readouterr().err
    for part in expected:
        assert part in error, error


# -- which price table applies to which configured provider ------------------------------------------

PRICED = TokenUsage(prompt_tokens=1000, completion_tokens=1000, total_tokens=2000)


@pytest.mark.parametrize(
    ("settings", "model", "source", "priced"),
    [
        ({"type": "openai"}, "gpt-4o", "openai", True),  # the type's own endpoint: its own table
        ({"type": "openai", "base_url": "http://127.0.0.1:8000/v1"}, "gpt-4o", None, False),  # local
        (
            {"type": "openai", "base_url": "https://proxy.example/v1", "prices_from": "openai"},
            "gpt-4o",
            "openai",
            True,
        ),
        ({"type": "groq"}, "llama-3.3-70b-versatile", None, True),  # a preset: priced by its URL
        ({"type": "anthropic", "base_url": "https://proxy.example"}, "claude-sonnet-4-0", None, False),
        (
            {"type": "azure", "base_url": "https://r.openai.azure.com", "api_version": "2024-10-21"},
            "gpt-4o",
            "azure",
            True,  # no default endpoint: every base_url is the service's own
        ),
    ],
    ids=["openai", "openai-at-custom-url", "prices-from", "groq-preset", "anthropic-proxy", "azure"],
)
def test_the_price_rule_per_configured_provider(
    settings: dict[str, Any], model: str, source: str | None, priced: bool
) -> None:
    gateway = Gateway({"providers": {"p": {"api_key": "sk-test-0000000000", **settings}}})
    provider = gateway.providers["p"]
    assert provider.price_provider == source
    cost = gateway.price(provider, model, PRICED)
    assert (cost is not None) == priced, cost
    if source == "openai":  # exactly OpenAI's price
        reference = Gateway({"providers": {"openai": {"api_key": "sk-test-0000000000"}}})
        assert cost == reference.price(reference.providers["openai"], model, PRICED)


def test_a_pricing_override_prices_a_custom_endpoint() -> None:
    config = {
        "providers": {"local": {"type": "openai", "base_url": "http://127.0.0.1:8000/v1", "api_key": "x"}},
        "pricing": {"local:gpt-4o": {"input": 1, "output": 2}},
    }
    gateway = Gateway(config)
    assert gateway.price(gateway.providers["local"], "gpt-4o", PRICED) == 0.003
