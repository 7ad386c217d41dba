"""The example apps: the openai SDK through each, against a fake OpenAI upstream on loopback."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator

import openai
import pytest

from ..support import serve


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The Litestar example configures logging as an app would (a queue handler on the root logger,
    at INFO): left in place, it holds the records of later tests, whose memory bounds count them
    (test_disconnects' thousand disconnects)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _quiet_exporters(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("AUDIT_LOG", str(tmp_path / "audit.jsonl"))


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


def test_fastapi_example_redacts_and_audits(upstream, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import json

    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.url}/v1")
    sys.modules.pop("examples.fastapi_app.app", None)
    module = importlib.import_module("examples.fastapi_app.app")
    with serve(module.app, lifespan="on") as url:
        client = openai.OpenAI(base_url=f"{url}/llm/v1", api_key="unused")
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "mail me at a@b.io"}]
        )
    assert upstream.last.json["messages"][0]["content"] == "mail me at [REDACTED_EMAIL]"
    [line] = [json.loads(item) for item in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert line["outcome"] == "success"
    assert line["provider"] == "openai"


def test_litestar_example_house_rules(upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sys.modules.pop("examples.litestar_app.app", None)
    module = importlib.import_module("examples.litestar_app.app")
    with serve(module.app, lifespan="on") as url:
        client = openai.OpenAI(base_url=f"{url}/llm/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(
                model="echo:x", messages=[{"role": "user", "content": "the forbidden topic"}]
            )
        assert refused.value.body["code"] == "topic_not_allowed"
        words = " ".join(["w"] * 2000)
        reply = client.chat.completions.create(model="echo:x", messages=[{"role": "user", "content": words}])
        assert reply.usage.completion_tokens == 1024  # max_tokens capped by the plugin


def test_rag_example_embeds_retrieves_and_answers_on_echo(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.rag.__main__ import main

    reply = main(["--question", "How are Bedrock requests signed?"])
    # echo repeats the prompt: the context it was given is the retrieval's result
    context = reply.split("Question:")[0]
    assert "SigV4" in context.splitlines()[1]  # the closest document comes first
    out = capsys.readouterr().out
    assert "indexed 6 documents (1536 dimensions)" in out
    assert "usage: echo:text-embedding-3-small: 2 calls" in out


def test_demo_telemetry_is_one_line_per_request_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console exporters print ~200 lines per request: opt-in (DEMO_CONSOLE_TELEMETRY=1); by
    default each gateway request is one compact line."""
    import io

    from examples.fastapi_app import telemetry
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from ..support import gateway_server

    monkeypatch.delenv("DEMO_CONSOLE_TELEMETRY", raising=False)
    tracer_provider, meter_provider = telemetry.setup()
    [processor] = tracer_provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    exporter = processor.span_exporter
    assert isinstance(exporter, telemetry.CompactSpanExporter)
    out = exporter.out = io.StringIO()
    config = {"providers": {"echo": {"type": "echo"}}}
    with gateway_server(config, tracer_provider=tracer_provider, meter_provider=meter_provider) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        for text in ("one", "two"):
            client.chat.completions.create(model="echo:e", messages=[{"role": "user", "content": text}])
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("otel gateway chat echo:e  200 success  1 attempt  echo  $0.000000")
    monkeypatch.setenv("DEMO_CONSOLE_TELEMETRY", "1")
    tracer_provider, _ = telemetry.setup()
    [processor] = tracer_provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    assert isinstance(processor.span_exporter, ConsoleSpanExporter)
