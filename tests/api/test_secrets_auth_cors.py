"""Secrets never leak; gateway auth; CORS."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from ..conftest import GATEWAY_KEY, PROVIDER_KEY, SECOND_KEY
from ..support import Reply, gateway_server

CHAT = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_full_session_never_shows_a_key(upstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = {
        "auth": {"api_keys": [GATEWAY_KEY]},
        "providers": {
            "openai": {
                "api_keys": [PROVIDER_KEY, SECOND_KEY],
                "base_url": f"{upstream.url}/v1",
            },
            "dead": {"type": "openai", "api_key": SECOND_KEY, "base_url": "http://127.0.0.1:9/v1"},
        },
    }
    seen: list[str] = []
    headers = {"authorization": f"Bearer {GATEWAY_KEY}"}
    with gateway_server(config) as (url, gateway):

        def call(method: str, path: str, **kwargs) -> None:
            response = httpx.request(method, f"{url}{path}", headers=headers, timeout=10, **kwargs)
            seen.append(response.text)
            seen.append(str(response.headers))

        call("POST", "/v1/chat/completions", json=CHAT)
        call("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
        # upstreams that echo the key back in their errors
        upstream.reply(
            Reply(status=401, json={"error": {"message": f"Incorrect API key provided: {PROVIDER_KEY}."}})
        )
        call("POST", "/v1/chat/completions", json=CHAT)
        upstream.reply(Reply(status=500, body=f"internal: key={SECOND_KEY}".encode()))
        call("POST", "/v1/chat/completions", json=CHAT)
        upstream.reply(
            Reply(
                sse=[
                    'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n',
                    f'data: {{"error": {{"message": "bad key {PROVIDER_KEY}"}}}}\n\n',
                ]
            )
        )
        call("POST", "/v1/chat/completions", json={**CHAT, "stream": True})
        call("POST", "/v1/chat/completions", json={**CHAT, "model": "dead:gpt-4o"})
        for path in (
            "/providers",
            "/usage",
            "/v1/models",
            "/health",
            "/providers/openai/stats",
            "/providers/dead/health",
        ):
            call("GET", path)
        seen.append(repr(gateway))
        seen.append(repr(gateway.config))
        seen.extend(repr(provider) for provider in gateway.providers.values())
        seen.extend(str(record) for record in gateway.usage.get_all())
    seen.extend(record.getMessage() for record in caplog.records)
    seen.extend(str(record.exc_info) for record in caplog.records if record.exc_info)
    text = "\n".join(seen)
    assert "Incorrect API key provided" in text  # the messages themselves do arrive...
    for secret in (PROVIDER_KEY, SECOND_KEY, GATEWAY_KEY):
        assert secret not in text  # ...without the keys
    assert upstream.requests[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_reprs_and_dumps_hide_header_values_and_secret_extras() -> None:
    from rec_llm_gateway import GatewayConfig

    config = GatewayConfig.load(
        {
            "providers": {
                "x": {"type": "openai", "base_url": "https://h/v1", "headers": {"x-key": SECOND_KEY}},
                "aws": {
                    "type": "bedrock",
                    "region": "us-east-1",
                    "aws_access_key_id": "AKIAEXAMPLEEXAMPLE",
                    "aws_secret_access_key": PROVIDER_KEY,
                    "aws_session_token": f"session-{SECOND_KEY}",
                },
            }
        }
    )
    for shown in (repr(config), str(config.model_dump()), config.model_dump_json()):
        assert PROVIDER_KEY not in shown
        assert SECOND_KEY not in shown
    assert "https://h/v1" in repr(config)
    # the gateway itself still gets the real values
    assert config.providers["x"].settings_dict()["headers"] == {"x-key": SECOND_KEY}


@pytest.mark.parametrize(
    "base_url",
    [f"https://u:{PROVIDER_KEY}@h/v1", f"https://h/v1?key={PROVIDER_KEY}", f"ftp://{PROVIDER_KEY}.h/v1"],
)
def test_a_base_url_with_credentials_is_refused_without_showing_them(base_url: str) -> None:
    from rec_llm_gateway import GatewayConfig
    from rec_llm_gateway.errors import ConfigError

    with pytest.raises(ConfigError, match="base_url") as refused:
        GatewayConfig.load({"providers": {"x": {"type": "openai", "base_url": base_url}}})
    assert PROVIDER_KEY not in str(refused.value)


def test_gateway_key_id_is_not_the_key(upstream, openai_config) -> None:
    from rec_llm_gateway import hookimpl

    seen = []

    class Spy:
        @hookimpl
        def pre_request(self, context):
            seen.append(context)

    config = {**openai_config, "auth": {"api_keys": ["first-key-000", GATEWAY_KEY]}}
    with gateway_server(config, plugins=[Spy()]) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=GATEWAY_KEY)
        client.chat.completions.create(**CHAT)
    [context] = seen
    assert context.gateway_key_id.startswith("key-")
    assert GATEWAY_KEY not in context.gateway_key_id
    assert context.headers["authorization"] == "[redacted]"


def test_openai_sdk_with_a_gateway_key(upstream, openai_config) -> None:
    config = {**openai_config, "auth": {"api_keys": [GATEWAY_KEY]}}
    with gateway_server(config) as (url, _):
        ok = openai.OpenAI(base_url=f"{url}/v1", api_key=GATEWAY_KEY, max_retries=0)
        assert ok.chat.completions.create(**CHAT).choices[0].message.content == "hi"
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(**CHAT)


def test_cors(upstream, openai_config) -> None:
    config = {
        **openai_config,
        "cors": {"allow_origins": ["https://app.example.com"], "allow_credentials": True},
    }
    with gateway_server(config) as (url, _):
        preflight = httpx.options(
            f"{url}/v1/chat/completions",
            headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"]

        evil = httpx.options(
            f"{url}/v1/chat/completions",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers

        allowed = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers={"origin": "https://app.example.com"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "x-request-id" in allowed.headers["access-control-expose-headers"]
        denied = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers={"origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in denied.headers
        # errors carry CORS headers too, so browsers can read them
        error = httpx.post(
            f"{url}/v1/chat/completions", content=b"{", headers={"origin": "https://app.example.com"}
        )
        assert error.status_code == 400
        assert error.headers["access-control-allow-origin"] == "https://app.example.com"


def test_cors_wildcard_never_with_credentials(upstream, openai_config) -> None:
    config = {**openai_config, "cors": {"allow_origins": ["*"]}}
    with gateway_server(config) as (url, _):
        response = httpx.get(f"{url}/health", headers={"origin": "https://anything.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


def test_request_id_is_returned_and_sane(upstream, openai_config) -> None:
    with gateway_server(openai_config) as (url, _):
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
        assert response.headers["x-request-id"] == response.json()["x_rec_llm"]["request_id"]
        given = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"x-request-id": "trace-abc.123"})
        assert given.headers["x-request-id"] == "trace-abc.123"
        hostile = httpx.post(
            f"{url}/v1/chat/completions", json=CHAT, headers={"x-request-id": "a b<script>" + "x" * 200}
        )
        assert hostile.headers["x-request-id"].startswith("req_")


def test_a_key_reads_its_own_usage_only(upstream, openai_config) -> None:
    config = {**openai_config, "auth": {"api_keys": ["key-alpha-000001", "key-beta-0000002"]}}
    with gateway_server(config) as (url, gateway):
        alpha, beta = {"x-api-key": "key-alpha-000001"}, {"x-api-key": "key-beta-0000002"}
        for _ in range(2):
            httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=alpha)
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=beta)
        mine = httpx.get(f"{url}/usage", headers=alpha).json()
        theirs = httpx.get(f"{url}/usage", headers=beta).json()
        assert mine["totals"]["calls"] == 2
        assert theirs["totals"]["calls"] == 1
        assert {record["gateway_key_id"] for record in mine["data"]} == {mine["data"][0]["gateway_key_id"]}
        assert mine["data"][0]["gateway_key_id"] != theirs["data"][0]["gateway_key_id"]
        assert httpx.get(f"{url}/usage").status_code == 401
        # in-process, the totals cover every key
        [record] = gateway.usage.get_all()
        assert (record.calls, record.gateway_key_id) == (3, None)


def test_with_admin_keys_only_admins_read_usage(upstream, openai_config) -> None:
    config = {**openai_config, "auth": {"api_keys": ["key-alpha-000001"], "admin_keys": ["admin-key-000001"]}}
    with gateway_server(config) as (url, _):
        httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"x-api-key": "key-alpha-000001"})
        refused = httpx.get(f"{url}/usage", headers={"x-api-key": "key-alpha-000001"})
        # a valid gateway key is not an invalid key: 403, and the message says what is needed
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "admin_key_required"
        assert "admin key" in refused.json()["error"]["message"]
        assert httpx.get(f"{url}/usage", headers={"x-api-key": "key-wrong-000001"}).status_code == 401
        assert httpx.get(f"{url}/usage").status_code == 401
        everything = httpx.get(f"{url}/usage", headers={"x-api-key": "admin-key-000001"}).json()
        assert everything["totals"]["calls"] == 1
        assert everything["data"][0]["gateway_key_id"] is None
