"""Several real gateway processes (``serve`` subprocesses and ``serve --workers 2``) sharing one
state store, a real SQLite file or a real ``redis-server``: limits, budgets and usage hold across
processes and restarts; a breaker opened in one process is honoured by another; Redis killed
mid-run leaves every request answered and the usage recorded meanwhile arrives when it is back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from ..state_support import (
    CHAT,
    RedisServer,
    chat_body,
    eventually_calls,
    free_port,
    gateways,
    post_all,
    redis_server,
    usage_totals,
    write_config,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_a_rate_limit_is_exact_over_three_processes(store_url: str, tmp_path: Path) -> None:
    keys = [{"key": "limited-key-0001", "name": "team", "requests_per_minute": 30}]
    config = write_config(tmp_path / "gateway.json", store_url, keys=keys)
    with gateways(config, 1, 1, 2) as processes:  # two plain processes and one with two workers
        urls = [process.url for process in processes]
        statuses = asyncio.run(post_all(urls, 90, {"x-api-key": "limited-key-0001"}, chat_body()))
        assert statuses.count(200) == 30
        assert statuses.count(429) == 60
        # Usage read from any process is what was served, whichever process served it.
        for url in urls:
            assert eventually_calls(url, 30)["calls"] == 30
            assert usage_totals(url, key="team")["calls"] == 30


def test_provider_and_deployment_limits_hold_over_processes(store_url: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.json",
        store_url,
        providers={"echo": {"rate_limits": {"requests_per_minute": 25}}},
        models={"g": {"deployments": [{"model": "echo:m", "rpm": 15}]}},
        routing={"max_retries": 0},
    )
    with gateways(config, 1, 2) as processes:
        urls = [process.url for process in processes]
        grouped = asyncio.run(post_all(urls, 40, {}, {**chat_body(), "model": "g"}))
        assert grouped.count(200) == 15  # the deployment's own limit
        direct = asyncio.run(post_all(urls, 40, {}, chat_body()))
        assert direct.count(200) == 10  # what the provider's limit has left
        assert eventually_calls(urls[0], 25)["calls"] == 25


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_usage_and_a_spent_budget_survive_a_restart(store_url: str, tmp_path: Path, stop: int) -> None:
    # Each request costs $0.003 (3 output tokens at $0.001); the budget is spent after the second.
    keys = [{"key": "budget-key-0001", "name": "payer", "monthly_budget_usd": 0.005}]
    config = write_config(tmp_path / "gateway.json", store_url, keys=keys)
    headers = {"x-api-key": "budget-key-0001"}
    body = chat_body("one two three", max_tokens=3)
    with gateways(config, 1) as (process,):
        statuses = [
            httpx.post(process.url + CHAT, json=body, headers=headers, timeout=10).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        if stop == signal.SIGKILL:
            time.sleep(1.5)  # past the one-second write window
        process.stop(stop)
    with gateways(config, 1) as (restarted,):
        refused = httpx.post(restarted.url + CHAT, json=body, headers=headers, timeout=10)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert refused.headers["retry-after"]
        totals = usage_totals(restarted.url)
        assert totals["calls"] == 2
        assert totals["cost_usd"] == pytest.approx(0.006)


def test_a_concurrent_burst_cannot_overspend_a_budget(store_url: str, tmp_path: Path) -> None:
    # Each request costs $0.001 and takes 0.3 s, so the 60 overlap; the budget is worth 10 of them.
    keys = [{"key": "burst-key-00001", "name": "burst", "monthly_budget_usd": 0.010}]
    config = write_config(tmp_path / "gateway.json", store_url, keys=keys, delay=0.3)
    with gateways(config, 1, 2) as processes:
        urls = [process.url for process in processes]
        statuses = asyncio.run(post_all(urls, 60, {"x-api-key": "burst-key-00001"}, chat_body("hello", 1)))
        admitted = statuses.count(200)
        assert 1 <= admitted <= 10
        totals = eventually_calls(urls[0], admitted)
        assert totals["calls"] == admitted
        assert totals["cost_usd"] <= 0.010 + 1e-9


def test_a_breaker_opened_in_one_process_is_honoured_by_another(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        config = write_config(
            tmp_path / "gateway.json",
            server.url,
            providers={
                "dead": {
                    "type": "openai",
                    "api_key": "sk-x",
                    "base_url": f"http://127.0.0.1:{free_port()}/v1",
                }
            },
            models={"flaky": {"deployments": ["dead:m"]}},
            routing={"max_retries": 0, "breaker": {"failure_threshold": 1, "timeout": 60}},
        )
        with gateways(config, 1, 1) as (first, second):
            body = {"model": "flaky", "messages": [{"role": "user", "content": "hi"}]}
            failed = httpx.post(first.url + CHAT, json=body, timeout=10)
            assert failed.status_code in (502, 503)
            assert "circuit_open" not in failed.text  # it tried, and the failure opened the circuit
            time.sleep(1.0)
            refused = httpx.post(second.url + CHAT, json=body, timeout=10)
            assert refused.status_code == 503
            assert "dead:m: circuit_open" in refused.json()["error"]["message"]  # not even tried


def test_redis_killed_mid_run_leaves_every_request_answered(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        keys = [{"key": "steady-key-0001", "name": "steady", "requests_per_minute": 10_000}]
        config = write_config(
            tmp_path / "gateway.json", server.url, keys=keys, state={"timeout_seconds": 1.0}
        )
        headers = {"x-api-key": "steady-key-0001"}
        with gateways(config, 1, 1) as processes:
            urls = [process.url for process in processes]
            before = asyncio.run(post_all(urls, 10, headers, chat_body()))
            server.kill()
            during = asyncio.run(post_all(urls, 20, headers, chat_body()))
            assert before + during == [200] * 30  # the store was down: nobody noticed
            server.start()
            for url in urls:
                assert eventually_calls(url, 30, seconds=20)["calls"] == 30
            logs = [process.stop() for process in processes]
        for log in logs:
            # One warning per outage, not per request (a loaded machine may add a slow-store outage).
            outages = log.count("state store (redis) unavailable")
            assert 1 <= outages == log.count("state store (redis) is available again") <= 3, log
    finally:
        server.kill()
