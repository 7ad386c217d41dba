"""Hostile upstreams, generated: every wire format's answers mutated at every field (issue 16).

Each case sends one chat request (JSON or stream) through the gateway, in-process, to a provider of
each wire format (OpenAI, Anthropic, Gemini, Bedrock) whose upstream is an ``httpx.MockTransport``
that answers with a generated body (``upstream_fuzz_support``): wrong types at every field, missing
fields, huge values, events dropped, repeated or cut, gzip. Whatever arrives, the client gets a
correct answer, a 502/503/504 in OpenAI's envelope, or a stream that ends with ``[DONE]`` or an SSE
error event; never a 500, never a stream dropped without an error event, and the request is counted
in usage exactly once (as an error exactly when it failed), with ``post_response`` at most once.

Derandomized; ``REC_LLM_FUZZ_SCALE`` and ``REC_LLM_FUZZ_RANDOM`` work as in the other fuzz suites.
The count of cases is printed in the summary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import given

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway import runtime as runtime_module

from .. import bedrock_support
from ..fuzz_support import TIMEOUT, fuzz_settings
from ..support import count_cases
from ..upstream_fuzz_support import HUGE, WIRES, Answer, answers, openai_chunk, openai_json

UPSTREAM = "http://upstream.test"
MODELS = {
    "openai": "openai:gpt-4o-mini",
    "anthropic": "anthropic:claude-sonnet-4-5",
    "gemini": "gemini:gemini-2.5-flash",
    "bedrock": "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
}
CONFIG = {
    "providers": {
        "openai": {"api_key": "sk-upstream-fuzz-0123456789", "base_url": f"{UPSTREAM}/v1"},
        "anthropic": {"api_key": "sk-ant-upstream-fuzz-0123", "base_url": UPSTREAM},
        "gemini": {"api_key": "gemini-upstream-fuzz-0123", "base_url": UPSTREAM},
        "bedrock": bedrock_support.provider_config(UPSTREAM),
    },
    "limits": {"max_response_bytes": 8 * HUGE, "max_event_bytes": 4 * HUGE},
    "http": {"transport": "httpx"},
    # every case must reach the upstream: the breaker would turn a run of bad answers into 503s
    "routing": {"breaker": {"enabled": False}},
}


class Responses:
    """A ``post_response`` plugin that counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def post_response(self, response: Any) -> None:
        self.calls += 1
        response.model_dump()  # read it all, as a plugin would


@dataclass
class Env:
    runner: asyncio.Runner
    gateway: Gateway
    client: httpx.AsyncClient
    plugin: Responses
    answer: list[Answer] = field(default_factory=list)

    def upstream(self, request: httpx.Request) -> httpx.Response:
        headers, body = self.answer[0].encode()
        return httpx.Response(self.answer[0].status, headers=headers, content=body)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    holder: list[Env] = []

    def transport(config: Any) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(lambda request: holder[0].upstream(request))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime_module, "upstream_transport", transport)
        runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        plugin = Responses()
        gateway = Gateway(CONFIG, plugins=[plugin])
        runner.run(gateway.start())
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gateway", timeout=TIMEOUT
        )
        holder.append(Env(runner, gateway, client, plugin))
        try:
            yield holder[0]
        finally:
            runner.run(client.aclose())
            runner.run(gateway.aclose())
            runner.close()


@dataclass
class Outcome:
    status: int
    body: bytes
    content_type: str
    failed: bool = False
    """An error: a non-200 status or a stream that ended with an error event."""


def _send(env: Env, wire: str, stream: bool) -> Outcome:
    async def go() -> Outcome:
        body = {"model": MODELS[wire], "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        response = await env.client.post("/v1/chat/completions", json=body)
        return Outcome(response.status_code, response.content, response.headers.get("content-type", ""))

    return env.runner.run(asyncio.wait_for(go(), TIMEOUT))


def _check_error_envelope(outcome: Outcome) -> None:
    assert outcome.status != 500, outcome.body[:500]
    assert outcome.status in (400, 401, 403, 404, 408, 409, 413, 422, 429, 502, 503, 504), outcome
    error = json.loads(outcome.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["code"] is None or isinstance(error["code"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error


def check(outcome: Outcome, stream: bool) -> None:
    """Never a 500; an error in the envelope; a stream that ends with [DONE] or an error event."""
    if outcome.status != 200:
        _check_error_envelope(outcome)
        outcome.failed = True
        return
    if not stream:
        data = json.loads(outcome.body)
        assert isinstance(data, dict) and isinstance(data.get("choices"), list), data
        return
    assert outcome.content_type.startswith("text/event-stream"), outcome
    events = [line[6:] for line in outcome.body.decode().split("\n") if line.startswith("data: ")]
    assert events, "a stream with no event at all"
    for event in events[:-1]:
        chunk = json.loads(event)
        assert isinstance(chunk, dict) and "error" not in chunk, chunk
    last = events[-1]
    if last == "[DONE]":
        return
    error = json.loads(last).get("error")
    assert isinstance(error, dict), f"the stream was dropped without an error event: {last[:300]}"
    assert set(error) == {"message", "type", "param", "code"}, error
    outcome.failed = True


def usage_totals(gateway: Gateway) -> tuple[int, int]:
    totals = gateway.usage.totals()
    return totals["calls"], totals["errors"]


def run_case(env: Env, answer: Answer) -> None:
    env.answer[:] = [answer]
    calls, errors = usage_totals(env.gateway)
    responses = env.plugin.calls
    try:
        outcome = _send(env, answer.wire, answer.stream)
    except httpx.HTTPError as exc:  # ASGITransport re-raises what the app raised: a dropped response
        raise AssertionError(f"the response was dropped ({type(exc).__name__}: {exc})") from None
    check(outcome, answer.stream)
    after_calls, after_errors = usage_totals(env.gateway)
    assert after_calls - calls == 1, f"usage counted {after_calls - calls} calls for one request"
    assert after_errors - errors == int(outcome.failed), "usage errors do not match the outcome"
    assert env.plugin.calls - responses <= 1, "post_response fired twice"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("wire", WIRES)
def test_every_upstream_answer_ends_well(env: Env, wire: str, stream: bool) -> None:
    @fuzz_settings(120)
    @given(answer=answers(wire, stream))
    def case(answer: Answer) -> None:
        count_cases("fuzz: upstream answers")
        run_case(env, answer)

    case()


def _openai_chunk(**fields: Any) -> dict[str, Any]:
    return openai_chunk({"content": "hi"}, **fields)


SEEDS_OPENAI_JSON = openai_json()
_TOOL_WITH_ODD_INDEX = {"index": {}, "id": "c", "function": {"name": "f", "arguments": "{}"}}
KNOWN_ODD_ANSWERS = {
    # issue 16 item 14, as reported: each dropped the stream or was a 500
    "openai-choice-index-list": Answer(
        "openai", True, [_openai_chunk(choices=[{"index": [1], "delta": {}}])]
    ),
    "openai-choices-number": Answer("openai", True, [_openai_chunk(choices=5), "[DONE]"]),
    "openai-tool-call-index-object": Answer(
        "openai",
        True,
        [_openai_chunk(choices=[{"index": 0, "delta": {"tool_calls": [_TOOL_WITH_ODD_INDEX]}}])],
    ),
    "openai-error-code-object": Answer("openai", True, [{"error": {"message": "boom", "code": {"a": 1}}}]),
    "openai-json-without-id": Answer("openai", False, {**SEEDS_OPENAI_JSON, "id": None}),
    "openai-json-choice-index-list": Answer(
        "openai", False, {**SEEDS_OPENAI_JSON, "choices": [{"index": [1], "message": {"content": "x"}}]}
    ),
    "anthropic-delta-index-list": Answer(
        "anthropic",
        True,
        [{"type": "content_block_delta", "index": [1], "delta": {"type": "text_delta", "text": "x"}}],
    ),
    "gemini-candidate-index-list": Answer(
        "gemini", True, [{"candidates": [{"index": [1], "content": {"parts": [{"text": "x"}]}}]}]
    ),
    "bedrock-block-index-object": Answer(
        "bedrock", True, [["contentBlockDelta", {"contentBlockIndex": {}, "delta": {"text": "x"}}]]
    ),
}


@pytest.mark.parametrize("name", sorted(KNOWN_ODD_ANSWERS))
def test_known_odd_answers(env: Env, name: str) -> None:
    run_case(env, KNOWN_ODD_ANSWERS[name])
