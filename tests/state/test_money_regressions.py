"""Money regressions (issue 16, items 1-4): usage counted once, budgets that never fail open."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import httpx
import pytest

from rec_llm_gateway import Gateway, hookimpl

from ..routing_support import client
from ..support import FakeUpstream, Reply, chunks, completion, gateway_server, serve

CHAT = "/v1/chat/completions"


class Seen:
    def __init__(self) -> None:
        self.responses: list[Any] = []

    @hookimpl
    def post_response(self, response: Any) -> None:
        self.responses.append(response)


async def test_a_200_of_an_unexpected_shape_is_counted_once(upstream: FakeUpstream) -> None:
    # The upstream's answer passes through to the client but does not validate as a ChatCompletion
    # for the post_response hook (``created`` is not a number).
    odd = completion("fine", created="soon")
    upstream.reply(Reply(json=odd))
    seen = Seen()
    config = {"providers": {"openai": {"api_key": "sk-x", "base_url": f"{upstream.url}/v1"}}}
    gateway = Gateway(config, plugins=[seen])
    async with client(gateway) as http:
        response = await http.post(
            CHAT, json={"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert response.status_code == 200
    [record] = gateway.usage.get_all()
    assert (record.calls, record.errors) == (1, 0)
    assert seen.responses == []  # the hook could not be given a valid response: skipped, logged


class Costs:
    def __init__(self) -> None:
        self.events: list[Any] = []

    @hookimpl
    def on_cost(self, event: Any) -> None:
        self.events.append(event)


def test_a_client_gone_before_the_usage_chunk_is_still_charged(upstream: FakeUpstream) -> None:
    # The client reads the whole answer and hangs up while the upstream holds back its usage chunk.
    gate = threading.Event()
    frames = chunks(["one ", "two ", "three ", "four"])[:-1]  # ends with the usage chunk, held by the gate
    upstream.reply(Reply(sse=frames, gate=gate))
    costs = Costs()
    config = {
        "providers": {"openai": {"api_key": "sk-x", "base_url": f"{upstream.url}/v1"}},
        "pricing": {"openai:gpt-4o-mini": {"input": 1000, "output": 1000}},
        "auth": {"keys": [{"key": "payer-key-00001", "name": "payer", "monthly_budget_usd": 100}]},
    }
    body = {"model": "openai:gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    with gateway_server(config, "bare", plugins=[costs]) as (url, gateway):
        with httpx.stream(
            "POST", f"{url}{CHAT}", json=body, headers={"x-api-key": "payer-key-00001"}, timeout=10
        ) as response:
            for line in response.iter_lines():
                if '"four"' in line:
                    break  # the whole text arrived (the gateway holds the final chunk back): hang up
        deadline = time.monotonic() + 10
        while not gateway.usage.get_all() and time.monotonic() < deadline:
            time.sleep(0.02)
        gate.set()
        [record] = gateway.usage.get_all()
        assert record.estimated_calls == 1
        assert record.completion_tokens == 5  # "one two three four": 18 characters, about 5 tokens
        assert record.prompt_tokens > 0
        assert record.cost_usd is not None and record.cost_usd > 0
        assert gateway.keys.spent("payer") == pytest.approx(record.cost_usd)
        [event] = costs.events
        assert event.estimated and event.cost_usd == pytest.approx(record.cost_usd)


class Errors:
    def __init__(self) -> None:
        self.errors: list[Any] = []

    @hookimpl
    def on_error(self, error: Any) -> None:
        self.errors.append(error)


def test_a_stream_cut_off_by_shutdown_is_accounted(upstream: FakeUpstream) -> None:
    gate = threading.Event()  # the upstream holds its usage chunk until the test ends
    upstream.reply(Reply(sse=chunks(["one ", "two ", "three ", "four"])[:-1], gate=gate))
    errors, costs = Errors(), Costs()
    config = {
        "providers": {"openai": {"api_key": "sk-x", "base_url": f"{upstream.url}/v1"}},
        "pricing": {"openai:gpt-4o-mini": {"input": 1000, "output": 1000}},
        "auth": {"keys": [{"key": "payer-key-00001", "name": "payer", "monthly_budget_usd": 100}]},
        "limits": {"shutdown_grace_seconds": 0.2},
    }
    gateway = Gateway(config, plugins=[errors, costs])
    body = {"model": "openai:gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "count"}]}
    streamed = threading.Event()

    def read() -> None:
        with contextlib.suppress(httpx.HTTPError):
            with httpx.stream(
                "POST", f"{url}{CHAT}", json=body, headers={"x-api-key": "payer-key-00001"}, timeout=10
            ) as response:
                for line in response.iter_lines():
                    if '"four"' in line:
                        streamed.set()  # keep the connection open: the server's shutdown cuts it

    try:
        with serve(gateway, lifespan="on") as url:
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            assert streamed.wait(10)
        reader.join(10)
    finally:
        gate.set()
    [record] = gateway.usage.get_all()
    assert (record.calls, record.errors, record.estimated_calls) == (1, 1, 1)
    assert record.cost_usd is not None and record.cost_usd > 0
    assert gateway.keys.spent("payer") == pytest.approx(record.cost_usd)
    assert [error.code for error in errors.errors] == ["shutdown"]
    assert [event.estimated for event in costs.events] == [True]
