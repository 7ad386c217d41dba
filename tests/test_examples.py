"""The example apps: the openai SDK through each, against a fake OpenAI upstream on loopback."""

from __future__ import annotations

import importlib
import sys

import openai
import pytest

from .support import serve


@pytest.mark.parametrize("example", ["fastapi_app", "litestar_app"])
def test_example_app(example: str, upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    sys.modules.pop(f"examples.{example}.app", None)
    module = importlib.import_module(f"examples.{example}.app")
    with serve(module.app, lifespan="on") as url:
        client = openai.OpenAI(base_url=f"{url}/llm/v1", api_key="unused")
        echoed = client.chat.completions.create(
            model="echo:echo-1", messages=[{"role": "user", "content": "hi echo"}]
        )
        assert echoed.choices[0].message.content == "hi echo"
        routed = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi openai"}]
        )
        assert routed.model_extra["x_rec_llm"]["provider"] == "openai"
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "a b"}], stream=True
            )
        )
        assert streamed == "ab"
        assert upstream.last.headers["authorization"] == "Bearer sk-example-test-key"


@pytest.mark.parametrize("example", ["fastapi_app", "litestar_app"])
def test_example_runs_on_echo_without_keys(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sys.modules.pop(f"examples.{example}.app", None)
    module = importlib.import_module(f"examples.{example}.app")
    assert sorted(module.gateway.providers) == ["echo"]
    with serve(module.app, lifespan="on") as url:
        client = openai.OpenAI(base_url=f"{url}/llm/v1", api_key="unused")
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "no keys"}]
        )
        assert reply.choices[0].message.content == "no keys"
        assert reply.model_extra["x_rec_llm"]["provider"] == "echo"
