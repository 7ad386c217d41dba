"""``/v1/messages`` and ``count_tokens`` under generated bodies, in-process on the ``echo`` provider.

Every answer is a valid Anthropic message (JSON), a well-formed named-event stream that the real
SDK's accumulator reads, or an error in Anthropic's envelope with a 4xx status: never a 5xx, never
OpenAI's envelope, never a traceback. Bodies are Anthropic requests whose blocks, tools, tool
choice, thinking, system prompt and metadata are drawn from plausible shapes and from arbitrary
JSON, so the translation meets what it was written for and what it was not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from anthropic.types import Message, MessageTokensCount
from hypothesis import given
from hypothesis import strategies as st

from rec_llm_gateway import Gateway

from ..fuzz_support import _LEAKS, call_asgi, fuzz_settings
from ..support import count_cases

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
TEXT = st.text(max_size=12)


def requests(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Anthropic requests; with ``junk``, any field may also be arbitrary JSON."""

    def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, JSON) if junk else good

    source = st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("base64"),
                "media_type": st.sampled_from(["image/png", "image/gif"]),
                "data": TEXT,
            }
        ),
        st.fixed_dictionaries({"type": st.just("url"), "url": TEXT}),
        st.fixed_dictionaries({"type": st.sampled_from(["file", "weird"]), "file_id": TEXT}),
    )
    arguments = st.just({}) | st.dictionaries(TEXT, JSON, max_size=2)
    block = st.deferred(
        lambda: st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}, optional={"cache_control": JSON}),
            st.fixed_dictionaries({"type": st.just("image"), "source": maybe(source)}),
            st.fixed_dictionaries(
                {
                    "type": st.just("document"),
                    "source": maybe(source | st.fixed_dictionaries({"type": st.just("text"), "data": TEXT})),
                },
                optional={"title": maybe(TEXT)},
            ),
            st.fixed_dictionaries(
                {
                    "type": st.just("tool_use"),
                    "id": maybe(TEXT),
                    "name": maybe(TEXT),
                    "input": maybe(arguments),
                }
            ),
            st.fixed_dictionaries(
                {"type": st.just("tool_result"), "tool_use_id": maybe(TEXT)},
                optional={"content": TEXT | st.lists(block, max_size=2), "is_error": st.booleans()},
            ),
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["thinking", "redacted_thinking"]),
                    "thinking": TEXT,
                    "signature": TEXT,
                }
            ),
            st.fixed_dictionaries({"type": TEXT}),
        )
    )
    message = st.fixed_dictionaries(
        {
            "role": maybe(st.sampled_from(["user", "user", "assistant", "system"])),
            "content": maybe(TEXT | st.lists(block, max_size=4)),
        }
    )
    tool = st.one_of(
        st.fixed_dictionaries(
            {"name": TEXT, "input_schema": st.just({"type": "object"})}, optional={"description": TEXT}
        ),
        st.fixed_dictionaries({"type": TEXT, "name": TEXT}),
    )
    choice = st.fixed_dictionaries(
        {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
        optional={"name": TEXT, "disable_parallel_tool_use": st.booleans()},
    )
    thinking = st.fixed_dictionaries(
        {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
        optional={"budget_tokens": st.integers(0, 40000)},
    )
    output = st.fixed_dictionaries(
        {}, optional={"effort": st.sampled_from(["low", "max", "huge"]), "format": JSON}
    )
    user = st.fixed_dictionaries({}, optional={"user_id": TEXT | st.text(min_size=70, max_size=90)})
    optional = {
        "system": maybe(TEXT | st.lists(block, max_size=2)),
        "tools": maybe(st.lists(tool, max_size=3)),
        "tool_choice": maybe(choice),
        "thinking": maybe(thinking),
        "output_config": maybe(output),
        "metadata": maybe(user),
        "stop_sequences": maybe(st.lists(TEXT, max_size=3)),
        "temperature": maybe(st.floats(0, 1)),
        "stream": maybe(st.booleans()),
    }
    return st.fixed_dictionaries(
        {
            "model": st.sampled_from(["echo:echo-1", "echo-1", "echo-1", "nowhere:x", ""]),
            "max_tokens": maybe(st.integers(0, 50)),
            "messages": maybe(st.lists(message, min_size=1, max_size=4)),
        },
        optional=optional,
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    gateway = Gateway({"providers": {"echo": {}}, "default_provider": "echo"})
    yield gateway
    asyncio.run(gateway.aclose())


def check(status: int, headers: dict[str, str], body: bytes, path: str, stream: bool) -> None:
    text = body.decode("utf-8", "replace")
    assert status < 500, text[:500]
    assert not _LEAKS.search(text), text[:500]
    if status >= 400:
        data = json.loads(body)
        assert data["type"] == "error" and set(data) <= {"type", "error", "request_id"}, text[:300]
        assert set(data["error"]) == {"type", "message"} and data["error"]["message"], text[:300]
        return
    if path.endswith("count_tokens"):
        MessageTokensCount.model_validate_json(body)
        return
    if not stream:
        Message.model_validate_json(body)
        return
    assert headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in text.split("\n") if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop", text[-300:]
    kinds: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            assert event["index"] == len(kinds)
            kinds[event["index"]] = event["content_block"]["type"]
        elif event["type"] == "content_block_delta":
            expected = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
            assert event["delta"]["type"] == expected[kinds[event["index"]]]


PATHS = st.sampled_from(["/v1/messages", "/v1/messages", "/v1/messages/count_tokens"])


@fuzz_settings(300)
@given(request=requests(junk=False), path=PATHS)
def test_plausible_bodies(gateway: Gateway, request: dict[str, Any], path: str) -> None:
    count_cases("fuzz: /v1/messages plausible bodies")
    post(gateway, request, path)


@fuzz_settings(200)
@given(request=requests(junk=True), path=PATHS)
def test_bodies_with_junk_anywhere(gateway: Gateway, request: dict[str, Any], path: str) -> None:
    count_cases("fuzz: /v1/messages bodies with junk")
    post(gateway, request, path)


def post(gateway: Gateway, request: dict[str, Any], path: str) -> None:
    body = json.dumps(request).encode()
    headers = [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01")]
    answer = asyncio.run(call_asgi(gateway, "POST", path, headers=headers, body_chunks=[body]))
    check(answer.status, answer.headers, answer.body, path, request.get("stream") is True)
