"""Each strategy's distribution over 1,000 requests through the gateway to fake upstreams on loopback.

Tolerances: round_robin within one request of an even split; weighted within 5% of the weights
(smooth weighted round robin is in fact exact over whole cycles); priority, cost and latency send
everything to the best deployment (latency: apart from one measuring call to each other one);
least_busy sends almost nothing to a deployment whose calls are stuck, and splits the rest within 10%.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from rec_llm_gateway import Gateway

from ..routing_support import (
    CountingUpstream,
    FakeClock,
    chat,
    client,
    control,
    failing,
    provider,
    served_by,
    serving,
)
from ..support import Recorded, Reply, completion

N = 1000


def strategy_config(
    upstreams: list[Any], strategy: str, entries: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    names = "abc"
    return {
        "providers": {name: provider(upstream) for name, upstream in zip(names, upstreams, strict=False)},
        "models": {
            "g": {
                "strategy": strategy,
                "deployments": entries or [f"{name}:gpt-4o-mini" for name in names],
            }
        },
    }


async def send(gateway: Gateway, count: int, concurrency: int = 20, **body: Any) -> Counter[str]:
    """``count`` requests for ``g``; how many each provider answered."""
    served: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with client(gateway) as http:

        async def one() -> None:
            async with gate:
                response = await http.post("/v1/chat/completions", json=chat("g", **body))
                assert response.status_code == 200, response.text
                served[response.json()["x_rec_llm"]["provider"]] += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return served


async def test_round_robin_spreads_evenly(upstreams) -> None:
    served = await send(Gateway(strategy_config(upstreams, "round_robin")), N)
    assert sorted(served.values()) == [333, 333, 334]
    assert served_by(upstreams[:3]) == [served["a"], served["b"], served["c"]]


async def test_weighted_follows_the_weights_within_5_percent(upstreams) -> None:
    weights = {"a": 1, "b": 2, "c": 7}
    entries = [{"model": f"{name}:gpt-4o-mini", "weight": weight} for name, weight in weights.items()]
    served = await send(Gateway(strategy_config(upstreams, "weighted", entries)), N)
    for name, weight in weights.items():
        expected = N * weight / sum(weights.values())
        assert abs(served[name] - expected) <= 0.05 * expected, served
    assert dict(served) == {"a": 100, "b": 200, "c": 700}  # smooth WRR: exact over whole cycles


async def test_weighted_interleaves_rather_than_bursts(upstreams) -> None:
    entries = [{"model": "a:m", "weight": 1}, {"model": "b:m", "weight": 1}, {"model": "c:m", "weight": 2}]
    gateway = Gateway(strategy_config(upstreams, "weighted", entries))
    async with client(gateway) as http:
        order = [
            (await http.post("/v1/chat/completions", json=chat("g"))).json()["x_rec_llm"]["provider"]
            for _ in range(8)
        ]
    assert order == ["c", "a", "b", "c"] * 2


async def test_priority_sends_everything_to_the_first_healthy(upstreams) -> None:
    served = await send(Gateway(strategy_config(upstreams, "priority")), N)
    assert dict(served) == {"a": N}


async def test_priority_tiers_use_the_lower_tier_only_when_the_first_cannot(upstreams) -> None:
    a, b, _c, _ = upstreams
    entries = [
        {"model": "a:m", "priority": 0},
        {"model": "b:m", "priority": 0},
        {"model": "c:m", "priority": 1},
    ]
    config = strategy_config(upstreams, "round_robin", entries)
    served = await send(Gateway(config), 100)
    assert dict(served) == {"a": 50, "b": 50}
    a.default = b.default = lambda request: failing(503)
    served = await send(Gateway(config), 10)
    assert dict(served) == {"c": 10}


async def test_cost_sends_everything_to_the_cheapest(upstreams) -> None:
    _a, b, _c, _ = upstreams
    config = strategy_config(upstreams, "cost")
    config["pricing"] = {
        "a:gpt-4o-mini": {"input": 2.5, "output": 10},
        "b:gpt-4o-mini": {"input": 0.15, "output": 0.6},
        "c:gpt-4o-mini": {"input": 1, "output": 1},
    }
    served = await send(Gateway(config), N)
    assert dict(served) == {"b": N}
    b.default = lambda request: failing(500)  # the cheapest failing: the next cheapest takes over
    served = await send(Gateway(config), 10)
    assert dict(served) == {"c": 10}


async def test_cost_uses_the_requests_estimated_tokens(upstreams) -> None:
    config = strategy_config(upstreams[:2], "cost", ["a:reader", "b:writer"])
    config["pricing"] = {
        "a:reader": {"input": 0.1, "output": 20},  # cheap to read, dear to write
        "b:writer": {"input": 5, "output": 0.5},  # the other way round
    }
    gateway = Gateway(config)
    async with client(gateway) as http:
        summarise = await http.post("/v1/chat/completions", json=chat("g", "word " * 20_000, max_tokens=10))
        essay = await http.post("/v1/chat/completions", json=chat("g", "an essay please", max_tokens=4000))
    assert summarise.json()["x_rec_llm"]["provider"] == "a"
    assert essay.json()["x_rec_llm"]["provider"] == "b"


def timed(clock: FakeClock, seconds: dict[str, float]) -> Any:
    """A fake upstream answer that takes ``seconds[current]`` on the routing clock."""

    def answer(request: Recorded) -> Reply:
        clock.advance(seconds["now"])
        return Reply(json=completion(model=request.json["model"]))

    return answer


async def test_latency_prefers_the_fastest_and_adapts(upstreams) -> None:
    a, b, c, _ = upstreams
    gateway = Gateway(strategy_config(upstreams, "latency"))
    clock, _ = control(gateway)
    speeds = {"a": {"now": 0.30}, "b": {"now": 0.05}, "c": {"now": 0.10}}
    for upstream, name in ((a, "a"), (b, "b"), (c, "c")):
        upstream.default = timed(clock, speeds[name])
    served = await send(gateway, N, concurrency=1)  # one at a time: each call's time is its own
    # One measuring call each, then the fastest (p50 over the window) takes everything.
    assert dict(served) == {"a": 1, "b": N - 2, "c": 1}
    # b slows down: once its recent median passes c's, traffic moves to c.
    speeds["b"]["now"] = 0.5
    gateway = Gateway(strategy_config(upstreams, "latency"))
    gateway.router.clock = clock
    async with client(gateway) as http:
        order = [
            (await http.post("/v1/chat/completions", json=chat("g"))).json()["x_rec_llm"]["provider"]
            for _ in range(20)
        ]
    assert order[:3] == ["a", "b", "c"]  # each measured once
    assert set(order[3:]) == {"c"}


async def test_latency_measures_again_once_samples_leave_the_window(upstreams) -> None:
    a, b, *_ = upstreams
    config = strategy_config(upstreams[:2], "latency", ["a:m", "b:m"])
    config["routing"] = {"latency": {"window": 60, "percentile": 95}}
    gateway = Gateway(config)
    clock, _ = control(gateway)
    a.default = timed(clock, {"now": 0.2})
    b.default = timed(clock, {"now": 0.1})
    async with client(gateway) as http:
        for _ in range(10):
            await http.post("/v1/chat/completions", json=chat("g"))
        assert served_by([a, b]) == [1, 9]
        clock.advance(61)  # every sample is now older than the window
        await http.post("/v1/chat/completions", json=chat("g"))
    assert served_by([a, b]) == [2, 9]  # unmeasured again: a is tried to measure it


async def test_least_busy_avoids_a_deployment_whose_calls_are_stuck() -> None:
    stuck, fast_b, fast_c = CountingUpstream(held=True), CountingUpstream(), CountingUpstream()
    concurrency = 20
    with serving(stuck, fast_b, fast_c) as upstreams:
        config = strategy_config(upstreams, "least_busy")
        config["providers"]["a"]["timeout"] = 120  # held calls must not time out (and free a slot)
        gateway = Gateway(config)
        sending = asyncio.ensure_future(send(gateway, N, concurrency=concurrency))
        while sum(served_by([fast_b, fast_c])) < N - concurrency:  # the rest goes to b and c
            await asyncio.sleep(0.01)
        stuck_calls = stuck.in_flight  # none of them has finished
        stuck.release()
        served = await sending
    # A deployment holding k calls is chosen only while both others hold at least k too, and at most
    # 19 other calls are in flight: 3k <= 19, so it never gets more than 19 // 3 + 1 = 7.
    assert 1 <= stuck_calls <= 7, stuck_calls
    assert abs(served["b"] - served["c"]) <= 0.1 * N, served
    assert sum(served.values()) == N


@pytest.mark.parametrize("strategy", ["round_robin", "weighted", "cost", "latency", "least_busy"])
async def test_every_strategy_fails_over_to_the_others(upstreams, strategy: str) -> None:
    a, _b, _c, _ = upstreams
    a.default = lambda request: failing(503)
    config = strategy_config(upstreams, strategy)
    config["pricing"] = {f"{name}:gpt-4o-mini": {"input": 1, "output": 1} for name in "abc"}
    served = await send(Gateway(config), 30)
    assert "a" not in served
    assert sum(served.values()) == 30
