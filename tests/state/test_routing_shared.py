"""What routing learns in one gateway process reaches the others through the state store (a real
SQLite file, a real redis-server): a 429's ``Retry-After`` cools the deployment down everywhere, and a
failed health check marks the provider down in processes that do not check it themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..state_support import ADMIN, CHAT, GatewayProcess, gateways, write_config
from ..support import FakeUpstream, Recorded, Reply, completion, serve_fake

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

BODY = {"model": "g", "messages": [{"role": "user", "content": "hi"}]}


def _answers(chat: Reply, health: Reply) -> Callable[[Recorded], Reply]:
    def answer(request: Recorded) -> Reply:
        return chat if request.path.endswith("/chat/completions") else health

    return answer


def _chats(upstream: FakeUpstream) -> int:
    return sum(1 for request in upstream.requests if request.path.endswith("/chat/completions"))


def _config(path: Path, store_url: str, first: str, second: str, **first_settings: Any) -> Path:
    """Group ``g``: ``first:m``, then ``second:m`` (priority order)."""
    return write_config(
        path,
        store_url,
        providers={
            "first": {"type": "openai", "api_key": "sk-first", "base_url": f"{first}/v1", **first_settings},
            "second": {"type": "openai", "api_key": "sk-second", "base_url": f"{second}/v1"},
        },
        models={"g": {"deployments": ["first:m", "second:m"]}},
    )


def _wait_for(
    url: str, ready: Callable[[dict[str, Any]], bool], provider: str = "first", seconds: float = 20
) -> dict[str, Any]:
    """``GET /providers/{provider}/stats`` until ``ready`` says yes (processes sync every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while True:
        stats: dict[str, Any] = httpx.get(
            f"{url}/providers/{provider}/stats", headers=ADMIN, timeout=10
        ).json()
        if ready(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


def test_a_429_seen_by_one_process_cools_the_deployment_down_in_another(
    store_url: str, tmp_path: Path
) -> None:
    limited = Reply(status=429, json={"error": {"message": "slow down", "type": "rate_limit"}})
    limited.headers["retry-after"] = "120"
    ok = Reply(json=completion(model="m"))
    with (
        serve_fake(_answers(limited, Reply(status=200, json={}))) as first,
        serve_fake(_answers(ok, Reply(status=200, json={}))) as second,
    ):
        config = _config(tmp_path / "gateway.json", store_url, first.url, second.url)
        a, b = GatewayProcess(config), GatewayProcess(config)
        try:
            assert httpx.post(a.url + CHAT, json=BODY, timeout=10).status_code == 200  # failed over
            assert (_chats(first), _chats(second)) == (1, 1)
            stats = _wait_for(b.url, lambda s: "cooling_down_s" in s["deployments"][0])
            assert stats["deployments"][0]["cooling_down_s"] > 60
            for _ in range(3):
                assert httpx.post(b.url + CHAT, json=BODY, timeout=10).status_code == 200
            assert (_chats(first), _chats(second)) == (1, 4)  # b never asked the cooling deployment
        finally:
            a.stop()
            b.stop()


def test_a_failed_health_check_in_one_process_marks_the_provider_down_in_another(
    store_url: str, tmp_path: Path
) -> None:
    ok = Reply(json=completion(model="m"))
    with (
        serve_fake(_answers(ok, Reply(status=503, json={"error": "down"}))) as first,
        serve_fake(_answers(ok, Reply(status=200, json={}))) as second,
    ):
        checking = _config(
            tmp_path / "checking.json",
            store_url,
            first.url,
            second.url,
            health_check={"path": "/health", "interval": 0.5},
        )
        silent = _config(tmp_path / "silent.json", store_url, first.url, second.url)  # no checks of its own
        a, b = GatewayProcess(checking), GatewayProcess(silent)
        try:
            stats = _wait_for(b.url, lambda s: s["health"] == "unhealthy")
            assert stats["health"] == "unhealthy"
            assert stats["deployments"][0]["breaker"]["state"] == "open"
            for _ in range(3):
                assert httpx.post(b.url + CHAT, json=BODY, timeout=10).status_code == 200
            assert (_chats(first), _chats(second)) == (0, 3)  # routed around the provider that is down
            assert all(request.path.endswith("/health") for request in first.requests)  # a's checks only
        finally:
            a.stop()
            b.stop()


def test_stats_show_the_headroom_every_process_used(store_url: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.json",
        store_url,
        providers={"echo": {"rate_limits": {"requests_per_minute": 25, "concurrent_requests": 4}}},
        models={"g": {"deployments": [{"model": "echo:m", "rpm": 15}]}},
    )
    body = {**BODY, "max_tokens": 1}
    with gateways(config, 1, 1) as (a, b):
        for process, count in ((a, 5), (b, 3)):
            for _ in range(count):
                assert httpx.post(process.url + CHAT, json=body, timeout=10).status_code == 200
        for process in (a, b):  # either process tells the same: the store's figures
            # Slots are freed with the write-behind flush (within flush_seconds of the answer).
            stats = _wait_for(process.url, lambda s: s["limits"]["concurrent_requests"]["used"] == 0, "echo")
            assert stats["limits"] == {
                "requests_per_minute": {"limit": 25, "used": 8, "remaining": 17},
                "concurrent_requests": {"limit": 4, "used": 0, "remaining": 4},
            }
            (deployment,) = stats["deployments"]
            assert deployment["limits"] == {"requests_per_minute": {"limit": 15, "used": 8, "remaining": 7}}
            listing = httpx.get(f"{process.url}/providers", headers=ADMIN, timeout=10).json()["data"]
            assert listing[0]["limits"] == stats["limits"]
