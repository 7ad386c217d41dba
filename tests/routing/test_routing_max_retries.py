"""``routing.max_retries`` bounds every attempt in a model group after the first, failovers to other
deployments included (it is not a count of retries of one deployment): the error a client gets when
it leaves deployments untried says so and names them, and ``x_rec_llm.skipped`` lists them."""

from __future__ import annotations

from typing import Any

from rec_llm_gateway import Gateway

from ..routing_support import chat, client, failing, provider


def config(upstreams: list[Any], max_retries: int | None) -> dict[str, Any]:
    a, b, c, _ = upstreams
    return {
        "providers": {"a": provider(a), "b": provider(b), "c": provider(c)},
        "models": {"g": ["a:gpt-4o-mini", "b:gpt-4o-mini", "c:gpt-4o-mini"]},
        "routing": {"max_retries": max_retries, "backoff": {"initial": 0, "max": 0}},
    }


async def test_max_retries_zero_is_one_attempt_and_the_error_says_why(upstreams) -> None:
    a, b, c, _ = upstreams
    a.reply(failing(500, "boom"))
    gateway = Gateway(config(upstreams, 0))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "not tried: b:gpt-4o-mini, c:gpt-4o-mini" in message
    assert "routing.max_retries allows 1 + max_retries attempts per model group" in message
    assert (len(a.requests), len(b.requests), len(c.requests)) == (1, 0, 0)


async def test_max_retries_one_fails_over_once(upstreams) -> None:
    a, b, c, _ = upstreams
    a.reply(failing(500, "boom"))
    b.reply(failing(503, "busy"))
    gateway = Gateway(config(upstreams, 1))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 502  # b's 503, as an upstream 5xx
    assert "not tried: c:gpt-4o-mini" in response.json()["error"]["message"]
    assert len(c.requests) == 0


async def test_without_max_retries_every_deployment_is_tried_once(upstreams) -> None:
    a = upstreams[0]
    a.reply(failing(500, "boom"))
    gateway = Gateway(config(upstreams, None))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 200
    assert response.json()["x_rec_llm"]["attempts"] == 2
    assert "skipped" not in response.json()["x_rec_llm"]
