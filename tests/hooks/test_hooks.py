"""Hooks: every hook, sync and async, fires at the right moment with the right arguments."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import httpx
import openai
import pytest

from rec_llm_gateway import CostEvent, FailoverEvent, Gateway, RequestContext, RequestRejected, hookimpl
from rec_llm_gateway.errors import GatewayError
from rec_llm_gateway.providers import ChatResult, Provider, UpstreamCall
from rec_llm_gateway.routing.resolve import Route
from rec_llm_gateway.schema import ChatCompletion, ChatCompletionRequest
from rec_llm_gateway.usage import TokenUsage

from ..support import Reply, gateway_server

CHAT = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hello hooks"}]}


class Recorder:
    """Sync implementations of every per-request hook; records (hook, arguments)."""

    def __init__(self, log: list[tuple[str, dict[str, Any]]], tag: str = "sync") -> None:
        self.log = log
        self.tag = tag

    @hookimpl
    def pre_request(self, request, context):
        context.metadata.setdefault("seen_by", []).append(self.tag)
        self.log.append((f"{self.tag}.pre_request", {"request": request, "context": context}))

    @hookimpl
    def post_response(self, request, response, context):
        self.log.append(
            (f"{self.tag}.post_response", {"request": request, "response": response, "context": context})
        )

    @hookimpl
    def on_cost(self, event):
        self.log.append((f"{self.tag}.on_cost", {"event": event}))

    @hookimpl
    def on_error(self, error, context):
        self.log.append((f"{self.tag}.on_error", {"error": error, "context": context}))


class AsyncRecorder(Recorder):
    """The same hooks as ``async def``, taking only some of the arguments."""

    @hookimpl
    async def pre_request(self, context):
        await asyncio.sleep(0)
        context.metadata.setdefault("seen_by", []).append(self.tag)
        self.log.append((f"{self.tag}.pre_request", {"context": context}))

    @hookimpl
    async def post_response(self, response, context):
        await asyncio.sleep(0)
        self.log.append((f"{self.tag}.post_response", {"response": response, "context": context}))

    @hookimpl
    async def on_cost(self, event):
        self.log.append((f"{self.tag}.on_cost", {"event": event}))

    @hookimpl
    async def on_error(self, error):
        self.log.append((f"{self.tag}.on_error", {"error": error}))


@pytest.fixture
def log() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_every_hook_fires_in_order_with_its_arguments(upstream, openai_config, log, stream: bool) -> None:
    plugins = [Recorder(log, "sync"), AsyncRecorder(log, "async")]
    with gateway_server(openai_config, plugins=plugins) as (url, _):
        response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "stream": stream})
    request_id = response.headers["x-request-id"]
    assert [name for name, _ in log] == [
        "sync.pre_request",
        "async.pre_request",  # registration order, sync and async mixed
        "sync.on_cost",
        "async.on_cost",
        "sync.post_response",
        "async.post_response",
    ]
    request = log[0][1]["request"]
    assert isinstance(request, ChatCompletionRequest)
    assert request.messages[0].content == "hello hooks"
    context: RequestContext = log[0][1]["context"]
    assert context.request_id == request_id
    assert context.headers["host"].startswith("127.0.0.1")
    assert context.metadata["seen_by"] == ["sync", "async"]  # metadata lives across hooks
    assert context.stream is stream

    event: CostEvent = log[2][1]["event"]
    assert (event.provider, event.model, event.request_id) == ("openai", "gpt-4o-mini", request_id)
    assert event.total_tokens == event.prompt_tokens + event.completion_tokens > 0
    assert event.cost_usd is not None and event.cost_usd > 0
    assert event.latency_ms > 0

    final: ChatCompletion = log[4][1]["response"]
    assert isinstance(final, ChatCompletion)
    message = final.choices[0]["message"]
    assert message["content"] == ("hellohooks" if stream else "hello hooks")  # the fake streams words
    assert final.choices[0]["finish_reason"] == "stop"
    assert final.usage is not None and final.usage["total_tokens"] == event.total_tokens
    assert final.model_extra["x_rec_llm"]["request_id"] == request_id
    post_context: RequestContext = log[4][1]["context"]
    assert post_context is context
    assert (post_context.provider, post_context.model, post_context.outcome) == (
        "openai",
        "gpt-4o-mini",
        "success",
    )
    assert post_context.cost_usd == event.cost_usd


def test_on_error_fires_once_with_the_error(upstream, openai_config, log) -> None:
    with gateway_server(openai_config, plugins=[Recorder(log), AsyncRecorder(log, "async")]) as (url, _):
        upstream.reply(Reply(status=500, json={"error": {"message": "down"}}))
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
        assert response.status_code == 502
        httpx.post(f"{url}/v1/chat/completions", content=b"{bad")
    names = [name for name, _ in log]
    assert names == [
        "sync.pre_request",
        "async.pre_request",
        "sync.on_error",
        "async.on_error",
        "sync.on_error",
        "async.on_error",
    ]
    error: GatewayError = log[2][1]["error"]
    assert error.status_code == 502
    context: RequestContext = log[2][1]["context"]
    assert (context.outcome, context.status_code, context.provider) == ("error", 502, "openai")
    assert log[4][1]["error"].code == "invalid_json"


def test_pre_request_can_replace_edit_or_return_a_dict(upstream, openai_config) -> None:
    class Rewrite:
        @hookimpl
        def pre_request(self, request):
            if request.messages[0].content == "replace":
                return request.model_copy(update={"model": "openai:gpt-4.1-mini"})
            if request.messages[0].content == "as dict":
                return {**request.model_dump(exclude_unset=True), "temperature": 0.1}
            request.messages[0].content = "edited in place"
            request.seed = 42
            return None

    with gateway_server(openai_config, plugins=[Rewrite()]) as (url, _):
        body = httpx.post(
            f"{url}/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "replace"}]}
        ).json()
        assert upstream.last.json["model"] == "gpt-4.1-mini"
        assert body["x_rec_llm"]["model"] == "gpt-4.1-mini"
        httpx.post(
            f"{url}/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "as dict"}]}
        )
        assert upstream.last.json["temperature"] == 0.1
        httpx.post(f"{url}/v1/chat/completions", json=CHAT)
        assert upstream.last.json["messages"][0]["content"] == "edited in place"
        assert upstream.last.json["seed"] == 42


def test_request_rejected_with_any_status(upstream, openai_config, log) -> None:
    class Quota:
        @hookimpl
        async def pre_request(self, context):
            raise RequestRejected("monthly quota used up", status_code=429, code="quota_exceeded")

    with gateway_server(openai_config, plugins=[Quota(), Recorder(log)]) as (url, _):
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "message": "monthly quota used up",
            "type": "permission_error",
            "param": None,
            "code": "quota_exceeded",
        }
    }
    assert not upstream.requests
    assert [name for name, _ in log] == ["sync.on_error"]  # later pre_request hooks do not run


def test_a_raising_hook_does_not_fail_the_request(
    upstream, openai_config, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def pre_request(self):
            raise ValueError("plugin bug")

        @hookimpl
        async def post_response(self):
            raise RuntimeError("async plugin bug")

        @hookimpl
        def on_cost(self):
            raise RequestRejected("too late to reject")

    with gateway_server(openai_config, plugins=[Broken()]) as (url, _):
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "hello hooks"
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any(
        "hook pre_request of plugin" in message and "ValueError: plugin bug" in message
        for message in messages
    )
    assert any("hook post_response" in message and "RuntimeError" in message for message in messages)
    assert any("hook on_cost" in message for message in messages)


def test_a_slow_async_hook_does_not_block_other_requests(upstream, openai_config) -> None:
    release = threading.Event()
    finished: list[str] = []

    class Slow:
        @hookimpl
        async def pre_request(self, request):
            if request.messages[0].content == "slow":
                while not release.is_set():
                    await asyncio.sleep(0.01)

    with gateway_server(openai_config, plugins=[Slow()]) as (url, _):

        def send(text: str) -> None:
            httpx.post(
                f"{url}/v1/chat/completions",
                json={**CHAT, "messages": [{"role": "user", "content": text}]},
                timeout=10,
            )
            finished.append(text)

        slow = threading.Thread(target=send, args=("slow",))
        slow.start()
        send("fast")  # completes while the slow request is still held in its hook
        assert finished == ["fast"]
        release.set()
        slow.join(10)
    assert finished == ["fast", "slow"]


class ConfigPlugin:
    """Loaded by import path from config (with options)."""

    instances: list[ConfigPlugin] = []

    def __init__(self, label: str = "default") -> None:
        self.label = label
        ConfigPlugin.instances.append(self)

    @hookimpl
    def pre_request(self, context):
        context.metadata["label"] = self.label


def test_registration_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    class EntryPointPlugin:
        @hookimpl
        def on_cost(self, event):
            return None

    class FakeEntryPoint:
        name, group, value = "fake-audit", "rec_llm_gateway", "fake_pkg:plugin"

        def load(self):
            return EntryPointPlugin()

    class FakeDistribution:
        entry_points = [FakeEntryPoint()]
        metadata = {"name": "fake-pkg"}

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [FakeDistribution()])
    ConfigPlugin.instances.clear()
    gateway = Gateway(
        {
            "providers": {"echo": {}},
            "plugins": [
                "tests.hooks.test_hooks:ConfigPlugin",
                {"path": "tests.hooks.test_hooks:ConfigPlugin", "options": {"label": "x"}},
            ],
            "load_entry_points": True,
        },
        plugins=[Recorder([])],
    )
    late = Recorder([], "late")
    gateway.register(late)
    names = [type(plugin).__name__ for plugin in gateway.plugins.get_plugins()]
    assert sorted(names) == ["ConfigPlugin", "ConfigPlugin", "EntryPointPlugin", "Recorder", "Recorder"]
    assert [plugin.label for plugin in ConfigPlugin.instances] == ["default", "x"]
    assert gateway.plugins is not Gateway({"providers": {"echo": {}}}).plugins  # one manager per gateway
    assert Gateway({"providers": {"echo": {}}}).plugins.get_plugins() == set()


def test_bad_plugin_paths_are_config_errors() -> None:
    from rec_llm_gateway import ConfigError

    with pytest.raises(ConfigError, match=r"cannot import 'nope\.module:Thing'"):
        Gateway({"plugins": ["nope.module:Thing"]})
    with pytest.raises(ConfigError, match="does not accept options"):
        Gateway({"plugins": [{"path": "tests.hooks.test_hooks:ConfigPlugin", "options": {"bogus": 1}}]})


# -- custom providers: the README example, tested ---------------------------------------------------


class ReverseProvider(Provider):
    """Answers with the last user message reversed: a complete custom provider."""

    type_name = "reverse"

    async def complete(self, call: UpstreamCall) -> ChatResult:
        text = str(call.request.messages[-1].content)[::-1]
        usage = TokenUsage(prompt_tokens=len(text), completion_tokens=len(text), total_tokens=2 * len(text))
        response = {
            "id": f"chatcmpl-{call.request_id}",
            "object": "chat.completion",
            "created": 0,
            "model": call.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": usage.to_openai(),
        }
        return ChatResult(response=response, usage=usage)

    async def stream(self, call: UpstreamCall):
        result = await self.complete(call)
        base = {
            "id": result.response["id"],
            "object": "chat.completion.chunk",
            "created": 0,
            "model": call.model,
        }
        for char in result.response["choices"][0]["message"]["content"]:
            yield {**base, "choices": [{"index": 0, "delta": {"content": char}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {**base, "choices": [], "usage": result.response["usage"]}


class ReversePlugin:
    @hookimpl
    def register_providers(self):
        return {"reverse": ReverseProvider}


def test_custom_provider_through_register_providers() -> None:
    config = {
        "providers": {"backwards": {"type": "reverse"}},
        "pricing": {"backwards:any": {"input": 1, "output": 1}},
    }
    with gateway_server(config, plugins=[ReversePlugin()]) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        reply = client.chat.completions.create(
            model="backwards:any", messages=[{"role": "user", "content": "abc"}]
        )
        assert reply.choices[0].message.content == "cba"
        assert reply.model_extra["x_rec_llm"]["cost_usd"] == pytest.approx(6e-6)
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(
                model="backwards:any", messages=[{"role": "user", "content": "xyz"}], stream=True
            )
        )
        assert text == "zyx"


def test_custom_provider_registered_after_construction() -> None:
    gateway = Gateway({"providers": {"backwards": {"type": "reverse"}}})
    assert "backwards" not in gateway.providers
    gateway.register(ReversePlugin())
    assert isinstance(gateway.providers["backwards"], ReverseProvider)


def test_on_failover_fires_when_the_router_moves_on(upstream, openai_config, log) -> None:
    events: list[FailoverEvent] = []

    class Watch:
        @hookimpl
        async def on_failover(self, event):
            events.append(event)

    config = {
        "providers": {
            "dead": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "models": ["gpt-4o-mini"]},
            "openai": openai_config["providers"]["openai"],
        }
    }
    gateway = Gateway(config, plugins=[Watch()])
    routes = [
        Route(gateway.providers["dead"], "gpt-4o-mini", "gpt-4o-mini"),
        Route(gateway.providers["openai"], "gpt-4o-mini", "gpt-4o-mini"),
    ]
    gateway.router.candidates = lambda request: routes  # type: ignore[method-assign]
    with gateway_server(gateway) as (url, _):
        body = httpx.post(f"{url}/v1/chat/completions", json=CHAT).json()
    [event] = events
    assert (event.from_, event.to, event.attempt) == ("dead:gpt-4o-mini", "openai:gpt-4o-mini", 1)
    assert event["from"] == "dead:gpt-4o-mini"
    assert event.reason == "upstream_unreachable"
    assert body["x_rec_llm"]["attempts"] == 2
    assert body["x_rec_llm"]["failovers"][0]["reason"] == "upstream_unreachable"
    assert json.loads(json.dumps(dict(event)))["to"] == "openai:gpt-4o-mini"
