"""Circuit breakers on a controllable clock, health checks, rate limits under concurrency, per-key
limits and budgets, and what the admin routes, spans and metrics show."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rec_llm_gateway import CostEvent, Gateway, hookimpl

from ..routing_support import (
    CountingUpstream,
    chat,
    client,
    control,
    dead_url,
    failing,
    provider,
    served_by,
    serving,
    two,
    wait_until,
)
from ..support import Recorded, Reply, chunks, openai_echo

CHAT = "/v1/chat/completions"


async def breaker_state(http: Any, name: str) -> str:
    stats = (await http.get(f"/providers/{name}/stats")).json()
    return str(stats["deployments"][0]["breaker"]["state"])


# -- circuit breaker ------------------------------------------------------------------------------


async def test_breaker_opens_half_opens_and_closes_on_schedule(upstreams) -> None:
    a, *_ = upstreams
    breaker = {"failure_threshold": 3, "timeout": 30, "success_threshold": 2}
    gateway = Gateway(two(upstreams, breaker=breaker))
    clock, _ = control(gateway)
    a.default = lambda request: failing(500)
    async with client(gateway) as http:
        for _ in range(3):  # closed: a is tried (and fails), b answers
            response = await http.post(CHAT, json=chat("g"))
            assert response.json()["x_rec_llm"]["attempts"] == 2
        assert await breaker_state(http, "a") == "open"
        # open: a is skipped, not called
        response = await http.post(CHAT, json=chat("g"))
        extension = response.json()["x_rec_llm"]
        assert (extension["provider"], extension["attempts"]) == ("b", 1)
        assert extension["skipped"] == [{"deployment": "a:gpt-4o-mini", "reason": "circuit_open"}]
        clock.advance(29.9)
        await http.post(CHAT, json=chat("g"))
        assert served_by([a]) == [3]
        # after `timeout`: half-open, one probe goes to a; it fails, so the circuit opens again
        clock.advance(0.1)
        response = await http.post(CHAT, json=chat("g"))
        assert response.json()["x_rec_llm"]["attempts"] == 2
        assert served_by([a]) == [4]
        assert await breaker_state(http, "a") == "open"
        # a recovers; after another `timeout` two successful probes close the circuit
        a.default = openai_echo
        clock.advance(30)
        first = await http.post(CHAT, json=chat("g"))
        assert first.json()["x_rec_llm"]["provider"] == "a"
        assert await breaker_state(http, "a") == "half_open"
        second = await http.post(CHAT, json=chat("g"))
        assert second.json()["x_rec_llm"]["provider"] == "a"
        assert await breaker_state(http, "a") == "closed"


async def test_every_circuit_open_is_503_with_a_clear_message(upstreams) -> None:
    a, *_ = upstreams
    config = {
        "providers": {"a": provider(a)},
        "routing": {"breaker": {"failure_threshold": 2, "timeout": 30}},
    }
    gateway = Gateway(config)
    clock, _ = control(gateway)
    a.default = lambda request: failing(503)
    async with client(gateway) as http:
        statuses = [(await http.post(CHAT, json=chat("a:gpt-4o-mini"))).status_code for _ in range(2)]
        clock.advance(10)
        response = await http.post(CHAT, json=chat("a:gpt-4o-mini"))
    assert statuses == [502, 502]
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["message"] == (
        "No healthy deployment for 'a:gpt-4o-mini'. Skipped: a:gpt-4o-mini: circuit_open, retry in 20.0s."
    )
    assert response.headers["retry-after"] == "20"
    assert served_by([a]) == [2]


async def test_4xx_and_429_do_not_open_the_circuit(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a)}, "routing": {"breaker": {"failure_threshold": 1}}}
    a.reply(
        Reply(status=400, json={"error": {"message": "bad"}}),
        Reply(status=429, json={"error": {"message": "slow"}}),
    )
    async with client(Gateway(config)) as http:
        assert (await http.post(CHAT, json=chat("a:m"))).status_code == 400
        assert (await http.post(CHAT, json=chat("a:m"))).status_code == 429
        assert (await http.post(CHAT, json=chat("a:m"))).status_code == 200


async def test_a_stream_that_breaks_after_starting_counts_against_the_breaker(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a)}, "routing": {"breaker": {"failure_threshold": 1}}}
    a.reply(Reply(sse=chunks(["x", "y"]), cut_after=2))
    async with client(Gateway(config)) as http:
        await http.post(CHAT, json=chat("a:m", stream=True))
        assert await breaker_state(http, "a") == "open"


# -- health checks --------------------------------------------------------------------------------


def switchable(alive: dict[str, bool]) -> Callable[[Recorded], Reply]:
    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models") and not alive["up"]:
            return failing(503, "down for maintenance")
        return openai_echo(request)

    return answer


async def test_health_checks_mark_a_dead_provider_unhealthy_and_back(upstreams) -> None:
    a, _b, *_ = upstreams
    alive = {"up": True}
    a.default = switchable(alive)
    config = two(upstreams)
    config["providers"]["a"]["health_check"] = {"interval": 0.02, "timeout": 2}
    gateway = Gateway(config)
    before = asyncio.all_tasks()
    async with gateway:
        runtime = gateway._runtimes[asyncio.get_running_loop()]
        assert len(runtime.tasks) == 1  # one background check per configured provider
        state = gateway.router.providers["a"]
        await wait_until(lambda: state.health.status == "healthy")
        alive["up"] = False
        await wait_until(lambda: state.health.status == "unhealthy")
        async with client(gateway) as http:
            response = await http.post(CHAT, json=chat("g"))
            assert response.json()["x_rec_llm"]["provider"] == "b"
            assert {"deployment": "a:gpt-4o-mini", "reason": "unhealthy"} in response.json()["x_rec_llm"][
                "skipped"
            ]
            health = (await http.get("/providers/a/health")).json()
            assert (health["status"], health["source"]) == ("unhealthy", "background")
            assert "down for maintenance" in health["error"]
            assert health["latency_ms"] >= 0 and health["last_check"] > 0
            listed = {
                entry["name"]: entry["health"] for entry in (await http.get("/providers")).json()["data"]
            }
            assert listed == {"a": "unhealthy", "b": "unknown"}
            alive["up"] = True
            await wait_until(lambda: state.health.status == "healthy")
            response = await http.post(CHAT, json=chat("g"))
            assert response.json()["x_rec_llm"]["provider"] == "a"
            await gateway.start()  # idempotent: no second set of checks
            assert len(runtime.tasks) == 1
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set(), "health check tasks outlived the gateway"
    assert runtime.tasks == set()


async def test_health_check_of_a_refusing_provider_and_thresholds() -> None:
    config = {
        "providers": {
            "gone": provider(dead_url(), health_check={"interval": 60, "unhealthy_threshold": 2}),
        }
    }
    gateway = Gateway(config)
    async with gateway:
        http = gateway.http_client()
        first = await gateway.health.check("gone", http, source="background")
        assert first.status == "unknown"  # one failure is not enough with unhealthy_threshold: 2
        assert "could not connect" in (first.error or "")
        second = await gateway.health.check("gone", http, source="background")
        assert second.status == "unhealthy"


async def test_on_demand_health_check_reports_without_ejecting(upstreams) -> None:
    """Issue 16 item 13: one failing on-demand check made every chat request a 503 for as long as
    it was watched (nothing else checked again). It reports; routing is left to calls and breakers."""
    a, _b, *_ = upstreams
    alive = {"up": False}
    a.default = switchable(alive)
    gateway = Gateway(two(upstreams))
    async with client(gateway) as http:
        for _ in range(3):
            health = (await http.get("/providers/a/health")).json()
            assert (health["status"], health["source"]) == ("unhealthy", "on_demand")
            assert "down for maintenance" in health["error"]
            response = await http.post(CHAT, json=chat("g"))
            assert response.json()["x_rec_llm"]["provider"] == "a"
        listed = {entry["name"]: entry["health"] for entry in (await http.get("/providers")).json()["data"]}
        assert listed["a"] == "unhealthy"
        alive["up"] = True
        assert (await http.get("/providers/a/health")).json()["status"] == "healthy"


async def test_start_and_close_leave_no_tasks_behind(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a, health_check={"interval": 0.01})}}
    before = asyncio.all_tasks()
    for _ in range(3):
        gateway = Gateway(config)
        await gateway.start()
        await asyncio.sleep(0.03)
        await gateway.aclose()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


async def test_health_checks_move_to_another_loop_when_theirs_closes(upstreams) -> None:
    a, *_ = upstreams
    gateway = Gateway({"providers": {"a": provider(a, health_check={"interval": 0.01})}})
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(gateway.start(), other).result(10)  # first: it runs the checks
        await gateway.start()
        here = gateway._runtimes[asyncio.get_running_loop()]
        assert len(here.tasks) == 0
        asyncio.run_coroutine_threadsafe(gateway.aclose(), other).result(10)
        await wait_until(lambda: len(here.tasks) == 1)
        await gateway.aclose()
        assert here.tasks == set()
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(10)
        other.close()


# -- rate limits ----------------------------------------------------------------------------------


async def test_rate_limits_are_never_exceeded_under_200_concurrent_requests() -> None:
    a, b = CountingUpstream(delay=0.01), CountingUpstream(delay=0.01)
    with serving(a, b):
        config = {
            "providers": {
                "a": provider(a, rate_limits={"requests_per_minute": 25}),  # the provider as a whole
                "b": provider(b),
            },
            "models": {
                "g": [
                    {"model": "a:gpt-4o-mini", "rpm": 40},
                    {"model": "b:gpt-4o-mini", "rpm": 30, "concurrent_requests": 4},
                ]
            },
        }
        gateway = Gateway(config)
        clock, _ = control(gateway)  # the clock stands still: the whole burst is in one window
        async with client(gateway) as http:
            responses = await asyncio.gather(*(http.post(CHAT, json=chat("g")) for _ in range(200)))
            statuses = [response.status_code for response in responses]
            ok = statuses.count(200)
            assert served_by([a]) == [25]  # the provider limit is the tighter one
            assert served_by([b])[0] <= 30
            assert b.max_in_flight <= 4
            assert ok == sum(served_by([a, b]))
            assert statuses.count(429) == 200 - ok
            refused = next(response for response in responses if response.status_code == 429)
            assert refused.json()["error"]["code"] == "rate_limit_exceeded"
            assert "Every deployment of 'g' is at its rate limit" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) >= 1
            # a minute later there is room again
            clock.advance(60)
            assert (await http.post(CHAT, json=chat("g"))).status_code == 200


async def test_concurrency_limit_holds_under_200_concurrent_requests() -> None:
    slow = CountingUpstream(delay=0.02)
    with serving(slow):
        config = {"providers": {"a": provider(slow, rate_limits={"concurrent_requests": 3})}}
        async with client(Gateway(config)) as http:
            responses = await asyncio.gather(*(http.post(CHAT, json=chat("a:m")) for _ in range(200)))
    statuses = [response.status_code for response in responses]
    assert slow.max_in_flight <= 3
    assert statuses.count(200) == served_by([slow])[0]
    assert set(statuses) == {200, 429}


async def test_tokens_per_minute_reserves_estimates_and_settles_real_usage(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a)}, "models": {"g": [{"model": "a:gpt-4o-mini", "tpm": 1000}]}}
    gateway = Gateway(config)
    control(gateway)
    async with client(gateway) as http:
        # Concurrently, each request reserves its estimate plus max_tokens (11 + 39 = 50 tokens).
        burst = await asyncio.gather(*(http.post(CHAT, json=chat("g", max_tokens=39)) for _ in range(200)))
        assert [r.status_code for r in burst].count(200) == 20
        stats = (await http.get("/providers/a/stats")).json()
        # Settled with the usage the upstream reported (15 tokens each).
        assert stats["deployments"][0]["limits"]["tokens_per_minute"] == {
            "limit": 1000,
            "used": 300,
            "remaining": 700,
        }


async def test_the_next_deployment_takes_what_one_cannot(upstreams) -> None:
    _a, _b, *_ = upstreams
    config = two(upstreams)
    config["models"]["g"] = [{"model": "a:gpt-4o-mini", "rpm": 2}, "b:gpt-4o-mini"]
    gateway = Gateway(config)
    control(gateway)
    async with client(gateway) as http:
        providers = [
            (await http.post(CHAT, json=chat("g"))).json()["x_rec_llm"]["provider"] for _ in range(4)
        ]
    assert providers == ["a", "a", "b", "b"]


async def test_limits_hold_across_event_loops(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a, rate_limits={"requests_per_minute": 30})}}
    gateway = Gateway(config)
    control(gateway)
    results: list[int] = []

    def serve_from_another_loop() -> None:
        async def burst() -> None:
            async with client(gateway) as http:
                responses = await asyncio.gather(*(http.post(CHAT, json=chat("a:m")) for _ in range(25)))
            results.extend(response.status_code for response in responses)

        asyncio.run(burst())

    threads = [threading.Thread(target=serve_from_another_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == 30
    assert served_by([a]) == [30]


# -- gateway keys ---------------------------------------------------------------------------------


class KeyIds:
    def __init__(self) -> None:
        self.ids: list[str | None] = []

    @hookimpl
    def on_cost(self, event: CostEvent) -> None:
        self.ids.append(event.gateway_key_id)


async def test_per_key_limits_and_names(upstreams) -> None:
    a, *_ = upstreams
    config = {
        "providers": {"a": provider(a)},
        "auth": {
            "api_keys": ["plain-key-0001"],
            "keys": [
                {"key": "team-a-key-0001", "name": "team-a", "requests_per_minute": 3},
                {"key": "team-b-key-0001", "name": "team-b"},
            ],
        },
    }
    seen = KeyIds()
    gateway = Gateway(config, plugins=[seen])
    clock, _ = control(gateway)

    def as_key(key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    async with client(gateway) as http:
        team_a = [
            (await http.post(CHAT, json=chat("a:m"), headers=as_key("team-a-key-0001"))) for _ in range(4)
        ]
        assert [response.status_code for response in team_a] == [200, 200, 200, 429]
        error = team_a[-1].json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert error["message"] == "Gateway key 'team-a' is over its limit of 3 requests per minute."
        assert team_a[-1].headers["retry-after"] == "60"
        assert (await http.post(CHAT, json=chat("a:m"), headers=as_key("team-b-key-0001"))).status_code == 200
        assert (await http.post(CHAT, json=chat("a:m"), headers=as_key("plain-key-0001"))).status_code == 200
        assert (await http.post(CHAT, json=chat("a:m"), headers=as_key("wrong"))).status_code == 401
        clock.advance(60)
        assert (await http.post(CHAT, json=chat("a:m"), headers=as_key("team-a-key-0001"))).status_code == 200
    assert seen.ids[:3] == ["team-a"] * 3
    assert seen.ids[3] == "team-b"
    assert seen.ids[4].startswith("key-")
    assert served_by([a]) == [6]


async def test_per_key_concurrency(upstreams) -> None:
    slow = CountingUpstream(delay=0.02)
    with serving(slow):
        config = {
            "providers": {"a": provider(slow)},
            "auth": {"keys": [{"key": "busy-key-0001", "name": "busy", "concurrent_requests": 2}]},
        }
        async with client(Gateway(config)) as http:
            headers = {"x-api-key": "busy-key-0001"}
            responses = await asyncio.gather(
                *(http.post(CHAT, json=chat("a:m"), headers=headers) for _ in range(50))
            )
    assert slow.max_in_flight <= 2
    assert {response.status_code for response in responses} == {200, 429}


async def test_a_budget_refuses_once_spent(upstreams) -> None:
    a, *_ = upstreams
    config = {
        "providers": {"a": provider(a)},
        "pricing": {"a:gpt-4o-mini": {"input": 1000, "output": 1000}},  # $0.001 a token
        "auth": {
            "keys": [
                {"key": "spender-key-01", "name": "spender", "monthly_budget_usd": 0.025},
                {"key": "saver-key-0001", "name": "saver", "monthly_budget_usd": 10},
            ]
        },
    }
    gateway = Gateway(config)
    month = {"now": time.mktime((2026, 3, 31, 12, 0, 0, 0, 0, -1))}
    gateway.keys.wallclock = lambda: month["now"]
    spender = {"x-api-key": "spender-key-01"}
    async with client(gateway) as http:
        first = await http.post(CHAT, json=chat("a:gpt-4o-mini"), headers=spender)  # 15 tokens
        stream = chat("a:gpt-4o-mini", stream=True)
        second = await http.post(CHAT, json=stream, headers=spender)  # streams count too: 12 tokens
        third = await http.post(CHAT, json=chat("a:gpt-4o-mini"), headers=spender)
        other = await http.post(CHAT, json=chat("a:gpt-4o-mini"), headers={"x-api-key": "saver-key-0001"})
        assert (first.status_code, second.status_code, third.status_code, other.status_code) == (
            200,
            200,
            429,
            200,
        )
        error = third.json()["error"]
        assert (error["code"], error["type"]) == ("budget_exceeded", "insufficient_quota")
        assert "Gateway key 'spender' has used its monthly budget of $0.025" in error["message"]
        assert 0 < int(third.headers["retry-after"]) <= 2 * 24 * 3600  # until the month turns
        assert gateway.keys.spent("spender") == pytest.approx(0.027)
        month["now"] += 3 * 24 * 3600  # April: a fresh budget
        assert (await http.post(CHAT, json=chat("a:gpt-4o-mini"), headers=spender)).status_code == 200
    assert served_by([a]) == [4]


# -- what the gateway shows -----------------------------------------------------------------------


async def test_stats_show_requests_latency_breaker_and_headroom(upstreams) -> None:
    a, _b, *_ = upstreams
    config = two(upstreams)
    config["providers"]["a"]["rate_limits"] = {"requests_per_minute": 100}
    config["models"]["g"] = {
        "strategy": "least_busy",
        "deployments": [{"model": "a:gpt-4o-mini", "rpm": 50, "concurrent_requests": 10}, "b:gpt-4o-mini"],
    }
    gateway = Gateway(config)
    control(gateway)
    a.reply(failing(500))
    async with client(gateway) as http:
        for _ in range(6):
            await http.post(CHAT, json=chat("g"))
        stats = (await http.get("/providers/a/stats")).json()
    assert stats["name"] == "a"
    assert stats["requests"] >= 3 and stats["errors"] == 1
    assert stats["latency"]["samples"] >= 2
    assert stats["latency"]["p50_ms"] is not None and stats["latency"]["p95_ms"] >= stats["latency"]["p50_ms"]
    assert stats["limits"] == {
        "requests_per_minute": {"limit": 100, "used": stats["requests"], "remaining": 100 - stats["requests"]}
    }
    [deployment] = stats["deployments"]
    assert deployment["deployment"] == "a:gpt-4o-mini"
    assert deployment["breaker"] == {"state": "closed", "consecutive_failures": 0}
    assert deployment["in_flight"] == 0
    assert deployment["limits"]["concurrent_requests"] == {"limit": 10, "used": 0, "remaining": 10}
    assert deployment["limits"]["requests_per_minute"]["used"] == stats["requests"]


async def test_v1_models_lists_groups_and_aliases(upstreams) -> None:
    config = two(upstreams)
    config["models"]["smart"] = "g"
    async with client(Gateway(config)) as http:
        ids = [entry["id"] for entry in (await http.get("/v1/models")).json()["data"]]
        assert ids[:2] == ["g", "smart"]
        assert (await http.get("/v1/models/smart")).status_code == 200
        response = await http.post(CHAT, json=chat("smart"))
    assert response.json()["x_rec_llm"]["provider"] == "a"


async def test_spans_and_metrics_show_every_attempt_and_why(upstreams) -> None:
    a, b, c, _ = upstreams
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    config = {
        "providers": {"a": provider(a), "b": provider(b), "c": provider(c)},
        "models": {"g": ["a:m", "b:m", "c:m"]},
        "routing": {"breaker": {"failure_threshold": 1}},
    }
    gateway = Gateway(
        config, tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    a.reply(failing(500))
    b.default = lambda request: failing(503)
    async with client(gateway) as http:
        await http.post(CHAT, json=chat("g"))  # a fails (opens), b fails (opens), c answers
        exporter.clear()
        await http.post(CHAT, json=chat("g"))  # a and b skipped
    spans = exporter.get_finished_spans()
    [gateway_span] = [span for span in spans if span.name.startswith("gateway chat")]
    attempts = [span for span in spans if span.name == "chat m"]
    assert len(attempts) == 1 and gateway_span.attributes["rec_llm.attempts"] == 1
    assert all(span.parent.span_id == gateway_span.context.span_id for span in attempts)
    skips = [dict(event.attributes) for event in gateway_span.events if event.name == "rec_llm.skip"]
    assert skips == [
        {"deployment": "a:m", "reason": "circuit_open"},
        {"deployment": "b:m", "reason": "circuit_open"},
    ]
    metrics = {
        metric.name: metric
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    transitions = {
        (point.attributes["rec_llm.provider"], point.attributes["rec_llm.state"]): point.value
        for point in metrics["rec_llm.gateway.routing.breaker_transitions"].data.data_points
    }
    assert transitions == {("a", "open"): 1, ("b", "open"): 1}
    skip_points = {
        (point.attributes["rec_llm.provider"], point.attributes["rec_llm.reason"]): point.value
        for point in metrics["rec_llm.gateway.routing.skips"].data.data_points
    }
    assert skip_points == {("a", "circuit_open"): 1, ("b", "circuit_open"): 1}
    failovers = {
        (point.attributes["rec_llm.from"], point.attributes["rec_llm.to"]): point.value
        for point in metrics["rec_llm.gateway.failovers"].data.data_points
    }
    assert failovers == {("a", "b"): 1, ("b", "c"): 1}
