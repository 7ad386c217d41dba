"""Retries, failover and fallbacks against fake upstreams on loopback that fail on command:
connection refused, hang, 429 with Retry-After, 500, 503, a body cut off mid-way, 4xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from rec_llm_gateway import FailoverEvent, Gateway, hookimpl

from ..routing_support import chat, client, control, dead_url, failing, provider, served_by
from ..support import Reply, chunks, completion, gateway_server


def group_config(upstreams: list[Any], *names: str, **routing: Any) -> dict[str, Any]:
    """Providers a, b, c, ... at the fake upstreams and a group ``g`` over them, in that order."""
    providers = {name: provider(upstream) for name, upstream in zip(names, upstreams, strict=False)}
    return {
        "providers": providers,
        "models": {"g": [f"{name}:gpt-4o-mini" for name in names]},
        "routing": routing,
    }


class Failovers:
    def __init__(self) -> None:
        self.events: list[FailoverEvent] = []

    @hookimpl
    def on_failover(self, event: FailoverEvent) -> None:
        self.events.append(event)


async def test_failover_in_the_configured_order(upstreams) -> None:
    _a, b, c, _ = upstreams
    config = group_config(upstreams, "a", "b", "c")
    config["providers"]["a"] = provider(dead_url())  # refuses connections
    watch = Failovers()
    gateway = Gateway(config, plugins=[watch])
    b.reply(failing(503, "overloaded"))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 200
    extension = response.json()["x_rec_llm"]
    assert (extension["provider"], extension["attempts"]) == ("c", 3)
    assert extension["failovers"] == [
        {"from": "a:gpt-4o-mini", "to": "b:gpt-4o-mini", "reason": "upstream_unreachable", "status": 502},
        {"from": "b:gpt-4o-mini", "to": "c:gpt-4o-mini", "reason": "upstream_error", "status": 502},
    ]
    assert [(event.from_, event.to, event.attempt) for event in watch.events] == [
        ("a:gpt-4o-mini", "b:gpt-4o-mini", 1),
        ("b:gpt-4o-mini", "c:gpt-4o-mini", 2),
    ]
    assert served_by([b, c]) == [1, 1]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (failing(500), "upstream_error"),
        (failing(502), "upstream_error"),
        (failing(503), "upstream_error"),
        (failing(504), "upstream_error"),
        (Reply(status=429, json={"error": {"message": "slow down"}}), "rate_limit_exceeded"),
        (Reply(json=completion(), cut_after=20), "upstream_connection_error"),  # reset mid-body
        (Reply(hang=True), "upstream_timeout"),
    ],
    ids=["500", "502", "503", "504", "429", "reset-mid-body", "hang"],
)
async def test_each_retryable_failure_moves_on(upstreams, reply: Reply, reason: str) -> None:
    a, b, *_ = upstreams
    config = group_config(upstreams, "a", "b")
    config["providers"]["a"]["timeout"] = 0.5  # for the hang
    a.reply(reply)
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 200, response.text
    [failover] = response.json()["x_rec_llm"]["failovers"]
    assert failover["reason"] == reason
    assert served_by([b]) == [1]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_upstream_4xx_does_not_fail_over(upstreams, status: int) -> None:
    a, b, *_ = upstreams
    a.reply(Reply(status=status, json={"error": {"message": "no", "type": "invalid_request_error"}}))
    async with client(Gateway(group_config(upstreams, "a", "b"))) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == status
    assert served_by([a, b]) == [1, 0]


async def test_all_deployments_refusing_connections_is_503() -> None:
    config = {
        "providers": {"a": provider(dead_url()), "b": provider(dead_url())},
        "models": {"g": ["a:m", "b:m"]},
    }
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "No deployment of 'g' could be reached" in error["message"]


async def test_the_last_real_answer_wins_over_a_refused_connection(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a), "b": provider(dead_url())}, "models": {"g": ["a:m", "b:m"]}}
    a.reply(failing(500, "kaput"))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 502
    assert "kaput" in response.json()["error"]["message"]


async def test_retries_back_off_with_full_jitter_on_one_deployment(upstreams) -> None:
    a, *_ = upstreams
    config = {"providers": {"a": provider(a)}, "routing": {"max_retries": 3, "backoff": {"initial": 0.5}}}
    gateway = Gateway(config)
    _, sleep = control(gateway)
    a.reply(failing(500), failing(503), Reply(status=429, json={"error": {"message": "later"}}))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("a:gpt-4o-mini"))
    assert response.status_code == 200
    extension = response.json()["x_rec_llm"]
    assert extension["attempts"] == 4
    assert [f["from"] == f["to"] == "a:gpt-4o-mini" for f in extension["failovers"]] == [True] * 3
    # full jitter: uniform(0, min(max, initial * 2**n)) before the n-th retry
    assert len(sleep.waits) == 3
    for n, wait in enumerate(sleep.waits):
        assert 0 <= wait <= 0.5 * 2**n


async def test_retry_after_is_honoured_before_a_retry(upstreams) -> None:
    a, *_ = upstreams
    gateway = Gateway({"providers": {"a": provider(a)}, "routing": {"max_retries": 1}})
    _clock, sleep = control(gateway)
    a.reply(Reply(status=429, json={"error": {"message": "wait"}}, headers={"retry-after": "2"}))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("a:gpt-4o-mini"))
    assert response.status_code == 200
    assert sleep.waits == [2.0]  # never less than Retry-After (the jitter is below it here)
    assert response.json()["x_rec_llm"]["attempts"] == 2


async def test_a_retry_after_longer_than_max_retry_wait_is_not_waited_for(upstreams) -> None:
    a, *_ = upstreams
    gateway = Gateway({"providers": {"a": provider(a)}, "routing": {"max_retries": 2, "max_retry_wait": 5}})
    _, sleep = control(gateway)
    a.reply(Reply(status=429, json={"error": {"message": "much later"}}, headers={"retry-after": "30"}))
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("a:gpt-4o-mini"))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "30"
        assert sleep.waits == []
        # Meanwhile the deployment cools down: the gateway answers for it without calling it.
        again = await http.post("/v1/chat/completions", json=chat("a:gpt-4o-mini"))
    assert again.status_code == 429
    assert "cooling_down" in again.json()["error"]["message"]
    assert int(again.headers["retry-after"]) <= 30
    assert served_by([a]) == [1]


async def test_a_429_cools_the_deployment_down_and_traffic_goes_elsewhere(upstreams) -> None:
    a, _b, *_ = upstreams
    gateway = Gateway(group_config(upstreams, "a", "b"))
    clock, _ = control(gateway)
    a.reply(Reply(status=429, json={"error": {"message": "slow"}}, headers={"retry-after": "2"}))
    async with client(gateway) as http:
        first = await http.post("/v1/chat/completions", json=chat("g"))
        second = await http.post("/v1/chat/completions", json=chat("g"))
        clock.advance(2.0)
        third = await http.post("/v1/chat/completions", json=chat("g"))
    assert [r.json()["x_rec_llm"]["provider"] for r in (first, second, third)] == ["b", "b", "a"]
    assert second.json()["x_rec_llm"]["skipped"] == [
        {"deployment": "a:gpt-4o-mini", "reason": "cooling_down"}
    ]


async def test_the_request_deadline_bounds_every_attempt(upstreams) -> None:
    a, b, *_ = upstreams
    a.reply(Reply(hang=True))
    config = group_config(upstreams, "a", "b", timeout=0.3)
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert served_by([b]) == [0]


async def test_max_retries_zero_tries_one_deployment_then_the_fallbacks(upstreams) -> None:
    a, b, c, _ = upstreams
    config = group_config(upstreams, "a", "b", max_retries=0, fallbacks={"g": ["c:gpt-4o-mini"]})
    config["providers"]["c"] = provider(c)
    a.reply(failing(500))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.json()["x_rec_llm"]["provider"] == "c"
    assert served_by([a, b, c]) == [1, 0, 1]


# -- fallbacks ------------------------------------------------------------------------------------


async def test_fallbacks_to_other_models_on_error_and_rate_limit(upstreams) -> None:
    a, b, c, _ = upstreams
    config = {
        "providers": {"openai": provider(a), "anthropic": provider(b), "gemini": provider(c)},
        "models": {"gpt-4o": ["openai:gpt-4o"], "claude-sonnet-4": ["anthropic:claude-sonnet-4"]},
        "routing": {"fallbacks": {"gpt-4o": ["claude-sonnet-4", "gemini:gemini-2.5-pro"]}},
    }
    a.reply(failing(500), Reply(status=429, json={"error": {"message": "slow"}}))
    b.reply(failing(503))
    async with client(Gateway(config)) as http:
        first = await http.post("/v1/chat/completions", json=chat("gpt-4o"))
        second = await http.post("/v1/chat/completions", json=chat("gpt-4o"))
    assert [f["to"] for f in first.json()["x_rec_llm"]["failovers"]] == [
        "anthropic:claude-sonnet-4",
        "gemini:gemini-2.5-pro",
    ]
    assert second.json()["x_rec_llm"]["model"] == "claude-sonnet-4"
    assert second.json()["x_rec_llm"]["failovers"][0]["reason"] == "rate_limit_exceeded"
    assert c.requests[-1].json["model"] == "gemini-2.5-pro"


async def test_context_window_fallback_for_a_long_prompt(upstreams) -> None:
    small, big, *_ = upstreams
    config = {
        "providers": {"small": provider(small), "big": provider(big)},
        "models": {"gpt-4": ["small:gpt-4"]},  # the catalog says gpt-4 has 8,192 tokens
        "routing": {"context_window_fallbacks": {"gpt-4": ["big:gpt-4o"]}},
    }
    long_prompt = "lorem ipsum dolor sit amet " * 2000  # ~54,000 characters: ~13,500 tokens
    async with client(Gateway(config)) as http:
        short = await http.post("/v1/chat/completions", json=chat("gpt-4", "short question"))
        long = await http.post("/v1/chat/completions", json=chat("gpt-4", long_prompt))
    assert short.json()["x_rec_llm"]["model"] == "gpt-4"
    extension = long.json()["x_rec_llm"]
    assert (extension["provider"], extension["model"]) == ("big", "gpt-4o")
    assert extension["skipped"] == [{"deployment": "small:gpt-4", "reason": "context_window"}]
    assert served_by([small, big]) == [1, 1]  # the long prompt never reached the small model


async def test_context_length_error_from_the_upstream_takes_the_fallback(upstreams) -> None:
    small, big, *_ = upstreams
    config = {
        "providers": {"small": provider(small), "big": provider(big)},
        "models": {"m": [{"model": "small:local-model", "context_window": 100_000}]},
        "routing": {"context_window_fallbacks": {"m": ["big:gpt-4o"]}},
    }
    too_long = {
        "message": "This model's maximum context length is 4096 tokens",
        "code": "context_length_exceeded",
    }
    small.reply(Reply(status=400, json={"error": {**too_long, "type": "invalid_request_error"}}))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("m"))
    [failover] = response.json()["x_rec_llm"]["failovers"]
    assert (failover["to"], failover["reason"], failover["status"]) == (
        "big:gpt-4o",
        "context_length_exceeded",
        400,
    )


async def test_no_deployment_fits_the_context_is_400(upstreams) -> None:
    small, big, *_ = upstreams
    config = {
        "providers": {"small": provider(small), "big": provider(big)},
        "models": {
            "m": [{"model": "small:x", "context_window": 1000}],
            "m-big": [{"model": "big:y", "context_window": 2000}],
        },
        "routing": {"context_window_fallbacks": {"m": ["m-big"]}},
    }
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("m", "x " * 5000))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert served_by([small, big]) == [0, 0]


async def test_content_policy_refusal_takes_the_content_policy_fallback(upstreams) -> None:
    strict, lenient, other, _ = upstreams
    config = {
        "providers": {"strict": provider(strict), "lenient": provider(lenient), "other": provider(other)},
        "models": {"g": ["strict:m", "other:m"]},
        "routing": {"content_policy_fallbacks": {"g": ["lenient:m"]}},
    }
    refusal = {
        "message": "refused by policy",
        "type": "invalid_request_error",
        "code": "content_policy_violation",
    }
    strict.reply(Reply(status=400, json={"error": refusal}))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    extension = response.json()["x_rec_llm"]
    assert extension["provider"] == "lenient"
    assert extension["failovers"][0]["reason"] == "content_policy_violation"
    assert served_by([other]) == [0]  # the same policy would refuse in the group: straight to the fallback


async def test_content_policy_refusal_without_fallback_reaches_the_client(upstreams) -> None:
    strict, other, *_ = upstreams
    config = {
        "providers": {"strict": provider(strict), "other": provider(other)},
        "models": {"g": ["strict:m", "other:m"]},
    }
    strict.reply(Reply(status=400, json={"error": {"message": "no", "code": "content_filter"}}))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_filter"
    assert served_by([other]) == [0]


# -- streams --------------------------------------------------------------------------------------


def sse_data(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


@pytest.mark.parametrize("failure", ["503", "refused", "reset-before-first-byte"])
def test_a_stream_fails_over_before_its_first_byte(upstreams, failure: str) -> None:
    a, b, *_ = upstreams
    config = group_config(upstreams, "a", "b")
    if failure == "503":
        a.reply(failing(503))
    elif failure == "refused":
        config["providers"]["a"] = provider(dead_url())
    else:
        a.reply(Reply(sse=chunks(["never"]), cut_after=0))
    with gateway_server(config) as (url, _):
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stream = sdk.chat.completions.create(
            model="g", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        parts = list(stream)
    text = "".join(part.choices[0].delta.content or "" for part in parts if part.choices)
    assert text == "hi"
    extension = parts[-1].model_extra["x_rec_llm"]
    assert (extension["provider"], extension["attempts"]) == ("b", 2)
    assert served_by([b]) == [1]


def test_a_stream_does_not_fail_over_after_its_first_byte(upstreams) -> None:
    a, b, *_ = upstreams
    a.reply(Reply(sse=chunks(["one", "two", "three"]), cut_after=2))
    with gateway_server(group_config(upstreams, "a", "b")) as (url, _):
        raw = httpx.post(f"{url}/v1/chat/completions", json=chat("g", stream=True), timeout=10).text
    events = sse_data(raw)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert set(events[-1]) == {"error"}  # the stream ends with an error event, not another provider
    assert "[DONE]" not in raw
    assert served_by([b]) == [0]
