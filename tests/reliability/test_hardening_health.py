"""Issue 16 (item 13): health checks must not eject a working provider.

A 404 from the check endpoint is not "down", the endpoint is configurable, a recovered provider's
breakers close (a burst right after recovery is served), and only admins trigger checks when admin
keys exist.
"""

from __future__ import annotations

import asyncio

from rec_llm_gateway import Gateway

from ..routing_support import chat, client, provider, two, wait_until
from ..support import FakeUpstream, Recorded, Reply, openai_echo

CHAT = "/v1/chat/completions"


def no_models_route(request: Recorded) -> Reply:
    """A server whose chat works and that has no ``/models`` (vLLM behind a strict proxy, ...)."""
    if request.path.endswith("/models"):
        return Reply(status=404, json={"error": {"message": "Not Found", "type": "not_found"}})
    return openai_echo(request)


async def test_a_404_from_the_check_endpoint_is_not_down(upstreams: list[FakeUpstream]) -> None:
    a, *_ = upstreams
    a.default = no_models_route
    gateway = Gateway({"providers": {"a": provider(a, health_check={"interval": 0.02})}})
    async with client(gateway) as http:
        health = (await http.get("/providers/a/health")).json()
        assert health["status"] == "healthy", health
        burst = await asyncio.gather(*(http.post(CHAT, json=chat("a:m")) for _ in range(10)))
        assert [response.status_code for response in burst] == [200] * 10


async def test_the_check_endpoint_is_configurable(upstreams: list[FakeUpstream]) -> None:
    a, *_ = upstreams
    alive = {"up": True}

    def answer(request: Recorded) -> Reply:
        if request.path == "/ready":
            return Reply(json={"ok": True}) if alive["up"] else Reply(status=503, json={"ok": False})
        return openai_echo(request)

    a.default = answer
    settings = provider(a, health_check={"interval": 0.02, "path": f"{a.url}/ready"})
    gateway = Gateway({"providers": {"a": settings}})
    async with gateway:
        state = gateway.router.providers["a"]
        await wait_until(lambda: state.health.status == "healthy")
        alive["up"] = False
        await wait_until(lambda: state.health.status == "unhealthy")
        assert "503" in (state.health.error or "")
        alive["up"] = True
        await wait_until(lambda: state.health.status == "healthy")
    assert any(request.path == "/ready" for request in a.requests)
    assert not any(request.path.endswith("/models") for request in a.requests)


async def test_recovery_closes_the_breakers_the_checks_opened(upstreams: list[FakeUpstream]) -> None:
    """After a passing check the breakers stayed half-open and 9 of 10 requests of the next burst
    got a 503 (one probe at a time)."""
    a, *_ = upstreams
    alive = {"up": False}

    def answer(request: Recorded) -> Reply:
        if request.path.endswith("/models") and not alive["up"]:
            return Reply(status=503, json={"error": {"message": "down"}})
        return openai_echo(request)

    a.default = answer
    config = {"providers": {"a": provider(a, health_check={"interval": 0.02})}, "models": {"g": ["a:m"]}}
    gateway = Gateway(config)
    async with client(gateway) as http:
        await gateway.start()
        state = gateway.router.providers["a"]
        await wait_until(lambda: state.health.status == "unhealthy")
        assert (await http.post(CHAT, json=chat("g"))).status_code == 503
        alive["up"] = True
        await wait_until(lambda: state.health.status == "healthy")
        burst = await asyncio.gather(*(http.post(CHAT, json=chat("g")) for _ in range(10)))
        assert [response.status_code for response in burst] == [200] * 10
        assert all(deployment.breaker.state == "closed" for deployment in state.deployments)


async def test_only_admins_trigger_checks_when_admin_keys_exist(upstreams: list[FakeUpstream]) -> None:
    config = {**two(upstreams), "auth": {"api_keys": ["user-key-0001"], "admin_keys": ["admin-key-0001"]}}
    gateway = Gateway(config)
    async with client(gateway) as http:
        refused = await http.get("/providers/a/health", headers={"authorization": "Bearer user-key-0001"})
        assert refused.status_code == 403  # a gateway key, but not an admin one
        assert not any(request.path.endswith("/models") for request in upstreams[0].requests)
        allowed = await http.get("/providers/a/health", headers={"authorization": "Bearer admin-key-0001"})
        assert allowed.status_code == 200
