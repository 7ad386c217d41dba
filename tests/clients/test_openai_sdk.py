"""The stock openai SDK, sync and async, streaming and not, through each host app on loopback."""

from __future__ import annotations

import openai
import pytest

from ..conftest import PROVIDER_KEY
from ..support import HOST_KINDS, gateway_server


@pytest.fixture(params=HOST_KINDS)
def host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_sync_completion_prefixed_and_unprefixed(host: str, upstream, openai_config) -> None:
    with gateway_server(openai_config, host) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="anything")
        for model in ("openai:gpt-4o-mini", "gpt-4o-mini"):
            response = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "ping pong"}]
            )
            assert response.choices[0].message.content == "ping pong"
            assert response.choices[0].finish_reason == "stop"
            assert response.usage is not None and response.usage.total_tokens == 15
            extension = response.model_extra["x_rec_llm"]
            assert extension["provider"] == "openai"
            assert extension["model"] == "gpt-4o-mini"
            assert extension["attempts"] == 1
            assert extension["latency_ms"] >= extension["overhead_ms"] >= 0
            assert extension["cost_usd"] > 0  # gpt-4o-mini is in the price table
            # the upstream saw the provider's model name and the provider key, not the client's key
            sent = upstream.last
            assert sent.json["model"] == "gpt-4o-mini"
            assert sent.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
            assert sent.path == "/v1/chat/completions"


def test_sync_stream(host: str, upstream, openai_config) -> None:
    with gateway_server(openai_config, host) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="anything")
        stream = client.chat.completions.create(
            model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}], stream=True
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "onetwothree"
    assert all(c.choices for c in chunks), "the usage chunk must be stripped when the client did not ask"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["x_rec_llm"]["provider"] == "openai"
    # the gateway asked for usage upstream anyway, to price the call
    assert upstream.last.json["stream_options"] == {"include_usage": True}


async def test_async_completion_and_stream_with_usage(host: str, upstream, openai_config) -> None:
    with gateway_server(openai_config, host) as (url, _):
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="anything")
        response = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "async hello"}]
        )
        assert response.choices[0].message.content == "async hello"
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        await client.close()
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].usage.completion_tokens == 2
    assert chunks[-1].model_extra["x_rec_llm"]["cost_usd"] > 0


def test_host_routes_still_work(host: str, upstream, openai_config) -> None:
    import httpx

    with gateway_server(openai_config, host) as (url, _):
        root = url.removesuffix("/llm")
        assert httpx.get(f"{root}/hello").status_code == 200
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        assert httpx.get(f"{url}/health/").json()["status"] == "ok"  # trailing slash
        models = httpx.get(f"{url}/v1/models").json()["data"]
        assert [(m["id"], m["object"], m["owned_by"]) for m in models] == [
            ("openai:gpt-4o-mini", "model", "openai")
        ]
        assert models[0]["context_window"] == 128_000  # from the catalog
