"""The routing parts on their own: breaker, limiter, latency window, error classification, strategies,
token estimates. Every schedule runs on explicit ``now`` values: nothing sleeps."""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rec_llm_gateway import Gateway
from rec_llm_gateway.errors import (
    BadGatewayError,
    RateLimitError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
)
from rec_llm_gateway.providers.upstream_errors import upstream_status_error
from rec_llm_gateway.routing.breaker import ADMIT, CLOSED, HALF_OPEN, OPEN, PROBE, REFUSE, CircuitBreaker
from rec_llm_gateway.routing.key_limits import _month
from rec_llm_gateway.routing.limits import WINDOW_SECONDS, MemoryLimiter
from rec_llm_gateway.routing.retry import CONTEXT, FATAL, POLICY, RETRY, RetryPolicy
from rec_llm_gateway.routing.settings import BreakerConfig, RateLimitConfig, RoutingConfig
from rec_llm_gateway.routing.tokens import estimate_prompt_tokens
from rec_llm_gateway.routing.window import LatencyWindow, percentile
from rec_llm_gateway.schema import ChatCompletionRequest

# -- circuit breaker ------------------------------------------------------------------------------


def breaker(**settings: Any) -> tuple[CircuitBreaker, list[str]]:
    changes: list[str] = []
    return CircuitBreaker(
        BreakerConfig(**settings), "p:m", lambda name, state: changes.append(state)
    ), changes


def test_breaker_counts_consecutive_failures() -> None:
    cb, changes = breaker(failure_threshold=3)
    cb.failure(0.0)
    cb.failure(1.0)
    cb.success(2.0)  # a success resets the count
    cb.failure(3.0)
    cb.failure(4.0)
    assert cb.state == CLOSED
    cb.failure(5.0)
    assert (cb.state, cb.opened_at, changes) == (OPEN, 5.0, [OPEN])


def test_breaker_half_open_admits_limited_probes_and_needs_enough_successes() -> None:
    cb, changes = breaker(failure_threshold=1, timeout=10, success_threshold=2, half_open_requests=2)
    cb.failure(0.0)
    assert cb.acquire(9.99) == REFUSE and cb.retry_in(9.99) == pytest.approx(0.01)
    assert not cb.available(9.99) and cb.available(10.0)
    assert [cb.acquire(10.0), cb.acquire(10.0), cb.acquire(10.0)] == [PROBE, PROBE, REFUSE]
    cb.neutral(PROBE)  # a probe that said nothing (a 4xx) frees its slot
    assert cb.acquire(10.5) == PROBE
    cb.success(11.0, PROBE)
    assert cb.state == HALF_OPEN
    cb.success(11.5, PROBE)
    assert cb.state == CLOSED
    assert changes == [OPEN, HALF_OPEN, CLOSED]
    assert cb.acquire(12.0) == ADMIT


def test_a_failed_probe_opens_the_circuit_again() -> None:
    cb, changes = breaker(failure_threshold=1, timeout=5)
    cb.failure(0.0)
    assert cb.acquire(5.0) == PROBE
    cb.failure(6.0, PROBE)
    assert (cb.state, cb.opened_at) == (OPEN, 6.0)
    assert cb.acquire(10.9) == REFUSE
    assert cb.acquire(11.0) == PROBE
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN]


def test_breaker_failure_rate_over_a_window() -> None:
    cb, _ = breaker(failure_threshold=100, failure_rate=0.5, window=60, min_requests=4)
    for now, ok in ((0, True), (1, False), (2, True)):
        (cb.success if ok else cb.failure)(float(now))
    assert cb.state == CLOSED  # three calls: below min_requests
    cb.failure(3.0)
    assert cb.state == OPEN  # 2 of 4 failed


def test_breaker_failure_rate_forgets_old_calls() -> None:
    cb, _ = breaker(failure_threshold=100, failure_rate=0.5, window=10, min_requests=4)
    cb.failure(0.0)
    cb.failure(1.0)
    for now in (20.0, 21.0, 22.0):
        cb.success(now)
    cb.failure(23.0)  # 1 of 4 in the window
    assert cb.state == CLOSED


def test_disabled_breaker_never_opens() -> None:
    cb, _ = breaker(enabled=False, failure_threshold=1)
    for now in range(10):
        cb.failure(float(now))
    assert cb.state == CLOSED and cb.acquire(10.0) == ADMIT
    assert cb.snapshot(10.0) == {"state": "disabled"}


def test_health_signals_open_and_probe() -> None:
    cb, _ = breaker(timeout=30)
    cb.force_open(1.0)
    assert cb.state == OPEN
    cb.allow_probe(2.0)  # a passing check does not wait for the timeout
    assert cb.state == HALF_OPEN and cb.acquire(2.0) == PROBE


# -- limiter --------------------------------------------------------------------------------------


def limiter(**limits: int) -> MemoryLimiter:
    return MemoryLimiter(RateLimitConfig(**limits), "test")


def test_rpm_is_a_sliding_window() -> None:
    lim = limiter(requests_per_minute=3)
    assert all(lim.try_acquire(t, 0) for t in (0.0, 10.0, 20.0))
    assert lim.try_acquire(30.0, 0) is None
    assert lim.refusal(30.0, 0) == ("requests_per_minute", pytest.approx(30.0))
    assert lim.try_acquire(59.99, 0) is None
    assert lim.try_acquire(60.0, 0) is not None  # the start at 0 has left the window
    assert lim.try_acquire(60.0, 0) is None


def test_tpm_reserves_and_settles() -> None:
    lim = limiter(tokens_per_minute=100)
    first = lim.try_acquire(0.0, 60)
    assert first is not None
    assert lim.try_acquire(1.0, 50) is None
    assert lim.refusal(1.0, 50) == ("tokens_per_minute", pytest.approx(59.0))
    lim.release(first, 20)  # it used less than reserved
    assert lim.try_acquire(2.0, 50) is not None
    assert lim.headroom(2.0)["tokens_per_minute"] == {"limit": 100, "used": 70, "remaining": 30}
    assert lim.try_acquire(3.0, 500) is None  # larger than the whole limit: never fits
    assert lim.refusal(3.0, 500) == ("tokens_per_minute", WINDOW_SECONDS)


def test_settling_after_the_window_changes_nothing() -> None:
    lim = limiter(tokens_per_minute=100)
    ticket = lim.try_acquire(0.0, 90)
    assert ticket is not None
    assert lim.try_acquire(61.0, 90) is not None
    lim.release(ticket, 5)  # its reservation already expired
    assert lim.headroom(61.0)["tokens_per_minute"]["used"] == 90


def test_concurrency_and_cancel() -> None:
    lim = limiter(concurrent_requests=2, requests_per_minute=10)
    one, two = lim.try_acquire(0.0, 0), lim.try_acquire(0.0, 0)
    assert one and two and lim.try_acquire(0.0, 0) is None
    assert lim.refusal(0.0, 0)[0] == "concurrent_requests"
    lim.release(one)
    lim.release(one)  # twice is harmless
    three = lim.try_acquire(0.0, 0)
    assert three is not None
    lim.cancel(three)  # never started: its request-per-minute start is given back too
    assert lim.headroom(0.0) == {
        "requests_per_minute": {"limit": 10, "used": 2, "remaining": 8},
        "concurrent_requests": {"limit": 2, "used": 1, "remaining": 1},
    }


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=200),
)
def test_rpm_never_exceeded_in_any_window(limit: int, gaps: list[float]) -> None:
    lim = limiter(requests_per_minute=limit)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if lim.try_acquire(now, 0) is not None:
            admitted.append(now)
    for index, start in enumerate(admitted):
        in_window = [t for t in admitted[: index + 1] if t > start - WINDOW_SECONDS]
        assert len(in_window) <= limit


@settings(max_examples=100, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.floats(0, 20, allow_nan=False), st.integers(0, 40), st.integers(0, 40)),
        min_size=1,
        max_size=100,
    )
)
def test_tpm_reservations_never_exceed_the_limit(calls: list[tuple[float, int, int]]) -> None:
    lim = limiter(tokens_per_minute=100)
    now = 0.0
    for gap, estimate, actual in calls:
        now += gap
        ticket = lim.try_acquire(now, estimate)
        if ticket is not None:
            assert lim.headroom(now)["tokens_per_minute"]["used"] <= 100
            lim.release(ticket, min(actual, estimate))  # settled at or below the reservation


# -- latency window -------------------------------------------------------------------------------


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([3.0], 99) == 3.0


def test_latency_window_expires_and_caches() -> None:
    window = LatencyWindow(window=10, samples=3, q=50)
    assert window.score(0.0) == -1.0
    for now, seconds in ((0.0, 0.3), (1.0, 0.1), (2.0, 0.2), (3.0, 0.9)):
        window.add(now, seconds)
    assert window.score(3.0) == 0.2  # the last 3 samples: 0.1, 0.2, 0.9
    assert window.score(11.5) == 0.2  # the sample at 1.0 has left the window: 0.2, 0.9
    assert window.score(12.5) == 0.9  # only the sample at 3.0 is left
    assert window.score(20.0) == -1.0
    assert window.summary(5.0)["samples"] == 4


# -- classification and backoff -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (upstream_status_error(500, "x", provider="p"), RETRY),
        (upstream_status_error(503, "x", provider="p"), RETRY),
        (upstream_status_error(429, "x", provider="p", retry_after="3"), RETRY),
        (UpstreamUnreachableError("no connect"), RETRY),
        (UpstreamConnectionError("reset"), RETRY),
        (upstream_status_error(529, "busy", provider="p"), RETRY),  # Anthropic overloaded: another may answer
        (UpstreamTimeoutError("slow"), RETRY),
        (BadGatewayError("garbage"), RETRY),
        (upstream_status_error(400, "bad", provider="p"), FATAL),
        (upstream_status_error(401, "who", provider="p"), FATAL),
        (upstream_status_error(400, "no", provider="p", code="content_policy_violation"), POLICY),
        (UpstreamError("filtered", status_code=400, code="content_filter"), POLICY),
        (upstream_status_error(400, "x", provider="p", code="context_length_exceeded"), CONTEXT),
        (upstream_status_error(400, "prompt is too long: 250000 tokens", provider="p"), CONTEXT),
    ],
)
def test_classification(error: Any, kind: str) -> None:
    assert RetryPolicy(RoutingConfig()).classify(error) == kind


def test_retry_codes_are_configurable() -> None:
    policy = RetryPolicy(RoutingConfig(retry_codes=[503, "timeout"]))
    assert policy.classify(upstream_status_error(503, "x", provider="p")) == RETRY
    assert policy.classify(upstream_status_error(500, "x", provider="p")) == FATAL
    assert policy.classify(UpstreamUnreachableError("no")) == FATAL
    assert policy.classify(UpstreamTimeoutError("slow")) == RETRY
    assert policy.classify(RateLimitError("slow")) == FATAL


def test_backoff_is_full_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(RoutingConfig(backoff={"initial": 0.5, "max": 3}))
    rng = random.Random(1)
    for retry, ceiling in ((0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (10, 3.0)):
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8  # spread over the whole range


# -- strategies (through the router, without HTTP) ------------------------------------------------


def plan_walk(strategy: str, weights: list[float] | None = None) -> tuple[Gateway, Any]:
    names = ["a", "b", "c"]
    weights = weights or [1.0] * 3
    gateway = Gateway(
        {
            "providers": {name: {"type": "echo"} for name in names},
            "models": {
                "g": {
                    "strategy": strategy,
                    "deployments": [
                        {"model": f"{n}:m", "weight": w} for n, w in zip(names, weights, strict=True)
                    ],
                }
            },
        }
    )
    return gateway, gateway.router.plan("g")


def pick(gateway: Gateway, plan: Any, release: bool = True) -> str:
    request = ChatCompletionRequest.model_validate(
        {"model": "g", "messages": [{"role": "user", "content": "x"}]}
    )
    lease = gateway.router.walk(plan, request).next()
    if release:
        lease.release()
    return str(lease.route.provider.name)


def test_smooth_weighted_round_robin_sequence() -> None:
    gateway, plan = plan_walk("weighted", [5, 1, 1])
    assert "".join(pick(gateway, plan) for _ in range(7)) == "aabacaa"  # nginx's documented order


@pytest.mark.parametrize(
    ("config", "model", "fast"),
    [
        ({}, "a:m", True),  # a plain single deployment: nothing to decide
        ({"models": {"g": ["a:m"]}}, "g", True),
        ({"models": {"g": ["a:m", "b:m"]}}, "g", False),  # a group
        ({"routing": {"max_retries": 1}}, "a:m", False),  # retries
        ({"routing": {"max_retries": 0}}, "a:m", True),
        ({"routing": {"timeout": 30}}, "a:m", False),  # a deadline
        ({"routing": {"fallbacks": {"a:m": ["b:m"]}}}, "a:m", False),
        ({"models": {"g": [{"model": "a:m", "rpm": 5}]}}, "g", False),  # limits
        ({"providers": {"a": {"type": "echo", "rate_limits": {"concurrent_requests": 2}}}}, "a:m", False),
        ({"models": {"g": {"strategy": "least_busy", "deployments": ["a:m"]}}}, "g", False),
    ],
)
def test_when_the_fast_path_applies(config: dict[str, Any], model: str, fast: bool) -> None:
    gateway = Gateway({"providers": {"a": {"type": "echo"}, "b": {"type": "echo"}}, **config})
    lease = gateway.router.fast_lease(gateway.router.plan(model))
    assert (lease is not None) == fast


def test_the_fast_path_steps_aside_for_an_unwell_deployment() -> None:
    gateway = Gateway({"providers": {"a": {"type": "echo"}}})
    router = gateway.router
    plan = router.plan("a:m")
    deployment = plan.fast
    assert deployment is not None and router.fast_lease(plan) is not None
    deployment.cooldown_until = router.clock() + 5
    assert router.fast_lease(plan) is None
    deployment.cooldown_until = 0.0
    deployment.provider.unhealthy = True
    assert router.fast_lease(plan) is None
    deployment.provider.unhealthy = False
    deployment.breaker.force_open(router.clock())
    assert router.fast_lease(plan) is None


def test_weighted_with_a_disabled_provider_in_the_group() -> None:
    gateway = Gateway(
        {
            "providers": {
                "off": {"type": "echo", "enabled": False},
                "a": {"type": "echo"},
                "b": {"type": "echo"},
            },
            "models": {
                "g": {"strategy": "weighted", "deployments": ["off:m", "a:m", {"model": "b:m", "weight": 3}]}
            },
        }
    )
    plan = gateway.router.plan("g")
    assert "".join(pick(gateway, plan) for _ in range(8)) == "babbbabb"


def test_latency_window_survives_other_threads() -> None:
    import threading

    window = LatencyWindow(window=0.5, samples=64)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        now = 0.0
        while not stop.is_set():
            now += 0.001
            window.add(now, 0.1)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: make the race likely
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        give_up = time.monotonic() + 2  # a bound on the effort, not a timing assertion
        for step in range(100_000):
            if time.monotonic() > give_up:
                break
            try:
                window.score(step * 0.001)
                window.values(step * 0.001)
            except Exception as exc:
                errors.append(exc)
                break
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert errors == []


def test_least_busy_counts_leases_in_flight() -> None:
    gateway, plan = plan_walk("least_busy")
    held = [pick(gateway, plan, release=False) for _ in range(3)]
    assert sorted(held) == ["a", "b", "c"]  # equally busy: rotate
    assert [d.in_flight for d in plan.group.deployments] == [1, 1, 1]


def test_cost_puts_unknown_prices_last() -> None:
    gateway, plan = plan_walk("cost")
    gateway.router._pricer = lambda provider, model, usage: None if provider.name == "a" else 1.0
    for deployment in plan.group.deployments:
        deployment.price = None
    assert pick(gateway, plan) in ("b", "c")


# -- token estimates and months -------------------------------------------------------------------


def test_token_estimate_grows_with_content() -> None:
    def estimate(body: dict[str, Any]) -> int:
        return estimate_prompt_tokens(ChatCompletionRequest.model_validate({"model": "m", **body}))

    text = {"messages": [{"role": "user", "content": "x" * 4000}]}
    assert 1000 <= estimate(text) <= 1010
    image = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]},
        ]
    }
    assert estimate(image) > 700
    tools = {
        **text,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": "b" * 400}}}],
    }
    assert estimate(tools) > estimate(text) + 100


def test_month_boundaries() -> None:
    december = time.mktime((2026, 12, 31, 23, 0, 0, 0, 0, 0)) - time.timezone
    month, next_start = _month(december)
    assert month == "2026-12"
    assert time.gmtime(next_start)[:3] == (2027, 1, 1)
