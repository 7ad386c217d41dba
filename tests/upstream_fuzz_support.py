"""Generated upstream answers for ``test_fuzz_upstream.py``: every wire format, mutated at every field.

A valid answer per wire format (OpenAI JSON and SSE, Anthropic JSON and SSE, Gemini JSON and SSE,
Bedrock Converse JSON and event-stream frames) is the seed; ``mutated`` replaces values at random
paths with values of the wrong type, huge values or nothing, deletes keys, and (for streams) drops,
repeats or cuts events. ``Answer.encode`` turns the result into the bytes an upstream sends,
optionally gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from rec_llm_gateway.providers.bedrock.eventstream import encode_frame

WIRES = ("openai", "anthropic", "gemini", "bedrock")
HUGE = 200_000
"""Characters in a huge string (the gateway's caps are set above it: the value must get through)."""

Path = tuple[str | int, ...]


# -- valid seeds -------------------------------------------------------------------------------------


def openai_json() -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"c":1}'}}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi there", "tool_calls": [call]},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def openai_chunk(delta: dict[str, Any], finish: str | None = None, **fields: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with one choice (``fields`` replace or add top-level fields)."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
        **fields,
    }


def openai_events() -> list[Any]:
    chunk = openai_chunk
    tool = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "hi "}),
        chunk({"tool_calls": [tool]}),
        chunk({}, "stop"),
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [],
            "usage": usage,
        },
        "[DONE]",
    ]


def anthropic_json() -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "hi there"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def anthropic_events() -> list[Any]:
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": []}
    return [
        {"type": "message_start", "message": {**start, "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]


def gemini_json() -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "hi there"}, {"functionCall": {"name": "f", "args": {"a": 1}}}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": "gemini-2.5-flash",
    }


def gemini_events() -> list[Any]:
    first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi "}]}, "index": 0}]}
    last = gemini_json()
    return [first, last]


def bedrock_json() -> dict[str, Any]:
    return {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "hi there"},
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
        "metrics": {"latencyMs": 10},
    }


def bedrock_events() -> list[Any]:
    """``(event type, payload)`` pairs of a ConverseStream answer."""
    return [
        ["messageStart", {"role": "assistant"}],
        ["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}],
        ["contentBlockStop", {"contentBlockIndex": 0}],
        [
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}},
        ],
        ["contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}],
        ["contentBlockStop", {"contentBlockIndex": 1}],
        ["messageStop", {"stopReason": "end_turn"}],
        ["metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}, "metrics": {}}],
    ]


SEEDS = {
    ("openai", False): openai_json,
    ("openai", True): openai_events,
    ("anthropic", False): anthropic_json,
    ("anthropic", True): anthropic_events,
    ("gemini", False): gemini_json,
    ("gemini", True): gemini_events,
    ("bedrock", False): bedrock_json,
    ("bedrock", True): bedrock_events,
}


# -- mutation ----------------------------------------------------------------------------------------

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 1.5, -0.0, 1e308]),
    st.text(max_size=8),
    st.just("x" * HUGE),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none()), max_size=3),
    st.dictionaries(
        st.sampled_from(["index", "type", "text", "code", "message", "a"]), st.integers(0, 3), max_size=2
    ),
    st.just({}),
    st.just([]),
)


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside ``value`` (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def _set(value: Any, path: Path, new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _set(copy[head], rest, new, delete)
        return copy
    copy_list = list(value)
    if delete and not rest:
        del copy_list[int(head)]
    else:
        copy_list[int(head)] = _set(copy_list[int(head)], rest, new, delete)
    return copy_list


@st.composite
def mutated(draw: st.DrawFn, seed: Any, max_changes: int = 3) -> Any:
    """``seed`` with up to ``max_changes`` values replaced or deleted (maybe none: the valid answer)."""
    value = seed
    for _ in range(draw(st.integers(0, max_changes))):
        candidates = paths(value)
        path = draw(st.sampled_from(candidates))
        delete = bool(path) and draw(st.booleans())
        value = _set(value, path, None if delete else draw(odd_values), delete)
    return value


@st.composite
def mutated_stream(draw: st.DrawFn, events: list[Any]) -> list[Any]:
    """The events, some mutated, maybe reordered at one place, repeated, dropped or cut short."""
    out = [draw(mutated(event, 2)) if draw(st.integers(0, 3)) == 0 else event for event in events]
    action = draw(st.sampled_from(["keep", "keep", "drop", "repeat", "cut", "swap"]))
    if action != "keep" and out:
        at = draw(st.integers(0, len(out) - 1))
        if action == "drop":
            del out[at]
        elif action == "repeat":
            out.insert(at, out[at])
        elif action == "cut":
            out = out[:at]
        elif action == "swap" and at + 1 < len(out):
            out[at], out[at + 1] = out[at + 1], out[at]
    return out


# -- encoding ----------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the fake upstream sends for one case."""

    wire: str
    stream: bool
    body: Any
    gzip: bool = False
    status: int = 200

    def encode(self) -> tuple[dict[str, str], bytes]:
        if not self.stream:
            headers, data = {"content-type": "application/json"}, json.dumps(self.body).encode()
        elif self.wire == "bedrock":
            headers, data = {"content-type": "application/vnd.amazon.eventstream"}, self._frames()
        else:
            headers, data = {"content-type": "text/event-stream"}, self._sse()
        if self.gzip:
            headers["content-encoding"] = "gzip"
            data = gzip.compress(data, compresslevel=1)
        return headers, data

    def _sse(self) -> bytes:
        parts = []
        for event in self.body:
            data = event if isinstance(event, str) else json.dumps(event)
            if self.wire == "anthropic" and isinstance(event, dict) and isinstance(event.get("type"), str):
                parts.append(f"event: {event['type']}\ndata: {data}\n\n")
            else:
                parts.append(f"data: {data}\n\n")
        return "".join(parts).encode()

    def _frames(self) -> bytes:
        frames = []
        for event in self.body:
            if isinstance(event, list) and len(event) == 2 and isinstance(event[0], str):
                kind, payload = event
            else:
                kind, payload = "contentBlockDelta", event
            headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
            frames.append(encode_frame(headers, json.dumps(payload).encode()))
        return b"".join(frames)


@st.composite
def answers(draw: st.DrawFn, wire: str, stream: bool) -> Answer:
    seed = SEEDS[(wire, stream)]()
    body = draw(mutated_stream(seed)) if stream else draw(mutated(seed))
    return Answer(wire, stream, body, gzip=draw(st.integers(0, 4)) == 0)
