"""The SSE decoder (upstream side), encoder and assembler (client side)."""

from __future__ import annotations

import json

import httpx
import pytest

from rec_llm_gateway.errors import GatewayError
from rec_llm_gateway.providers.http import _iter_sse_data
from rec_llm_gateway.providers.upstream_body import _CappedStream
from rec_llm_gateway.streaming import SSEEncoder, StreamAssembler


async def decode(parts: list[bytes]) -> list[bytes]:
    """Decode a body that arrives in exactly these network reads."""
    response = httpx.Response(200, stream=_Chunks(parts))
    return [data async for data in _iter_sse_data(response)]


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self):  # type: ignore[override]
        for part in self.parts:
            yield part


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([b"data: a\n\ndata: b\n\n"], [b"a", b"b"]),
        ([b"data: a\r\n\r\ndata: b\r\n\r\n"], [b"a", b"b"]),  # Gemini's CRLF framing
        ([b"da", b'ta: {"x"', b": 1}\n", b"\n"], [b'{"x": 1}']),  # split across reads anywhere
        ([b"event: message_start\ndata: {}\n\n"], [b"{}"]),  # Anthropic's event lines are ignored
        ([b": keep-alive comment\n\ndata: x\n\n"], [b"x"]),
        ([b"data: line1\ndata: line2\n\n"], [b"line1\nline2"]),
        ([b"data:nospace\n\n"], [b"nospace"]),
        ([b"data: last-without-blank-line"], [b"last-without-blank-line"]),
        ([b"data: a\n\n\n\n\ndata: b\n\n"], [b"a", b"b"]),
        ([b"id: 1\nretry: 5\n\n"], []),
        # one whole event per read (the decoder's shortcut) and the reads around it
        ([b"data: a\n\n", b"data: b\n\n"], [b"a", b"b"]),
        ([b"data: a\r\n\n", b"data:b\n\n"], [b"a", b"b"]),
        ([b"data: a\n", b"data: b\n\n"], [b"a\nb"]),  # an event still open takes the next line
        ([b"data: a", b"data: b\n\n", b"data: c\n\n"], [b"adata: b", b"c"]),
        ([b"event: x\n\n", b"data: a\n\n"], [b"a"]),
    ],
)
async def test_decoder(parts: list[bytes], expected: list[bytes]) -> None:
    assert await decode(parts) == expected


async def test_a_whole_event_in_one_read_is_held_to_the_event_limit() -> None:
    response = httpx.Response(200, stream=_Chunks([b"data: " + b"x" * 64 + b"\n\n"]))
    response.stream = _CappedStream(response.stream, 10_000, 32)
    with pytest.raises(GatewayError, match="32"):
        [data async for data in _iter_sse_data(response)]


def chunk(delta: dict, finish: str | None = None, index: int = 0) -> dict:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }


def sse(data: bytes) -> list[dict]:
    return [
        json.loads(block.removeprefix(b"data: "))
        for block in data.split(b"\n\n")
        if block and block != b"data: [DONE]"
    ]


def test_encoder_holds_only_the_final_chunks() -> None:
    encoder = SSEEncoder(wants_usage=False)
    assert sse(encoder.feed(chunk({"role": "assistant"}))) == [chunk({"role": "assistant"})]
    assert sse(encoder.feed(chunk({"content": "hi"}))) == [chunk({"content": "hi"})]
    assert encoder.feed(chunk({}, "stop")) == b""  # held: x_rec_llm may ride on it
    assert encoder.feed({"id": "c", "choices": [], "usage": {"total_tokens": 3}}) == b""  # stripped
    tail = encoder.finish({"cost_usd": 1})
    assert tail.endswith(b"data: [DONE]\n\n")
    [final] = sse(tail)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["x_rec_llm"] == {"cost_usd": 1}


def test_encoder_with_usage_puts_the_extension_on_the_usage_chunk() -> None:
    encoder = SSEEncoder(wants_usage=True)
    encoder.feed(chunk({"content": "hi"}) | {"usage": None})
    out = encoder.feed(chunk({}, "stop") | {"usage": None})
    assert out == b""
    out = encoder.feed({"id": "c", "choices": [], "usage": {"total_tokens": 3}})
    assert sse(out)[0]["choices"][0]["finish_reason"] == "stop"  # the finish chunk is released
    [final] = sse(encoder.finish({"x": 1}))
    assert final["usage"] == {"total_tokens": 3}
    assert final["x_rec_llm"] == {"x": 1}


def test_encoder_strips_usage_null_when_not_asked() -> None:
    encoder = SSEEncoder(wants_usage=False)
    [sent] = sse(encoder.feed(chunk({"content": "x"}) | {"usage": None}))
    assert "usage" not in sent


def test_assembler_builds_the_whole_response() -> None:
    assembler = StreamAssembler()
    assembler.add(chunk({"role": "assistant", "content": ""}))
    assembler.add(chunk({"content": "Hel"}))
    assembler.add(chunk({"content": "lo"}))
    assembler.add(chunk({"reasoning_content": "think"}))
    assembler.add(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        )
    )
    assembler.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    assembler.add(
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "g", "arguments": "{}"}}]})
    )
    assembler.add(chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}))
    assembler.add(chunk({}, "tool_calls"))
    assembler.add(chunk({"content": "second choice"}, "stop", index=1))
    assembler.add(
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    )
    response = assembler.response()
    first, second = response["choices"]
    assert first["message"]["content"] == "Hello"
    assert first["message"]["reasoning_content"] == "think"
    assert [call["function"]["arguments"] for call in first["message"]["tool_calls"]] == ['{"a": 1}', "{}"]
    assert [call["id"] for call in first["message"]["tool_calls"]] == ["call_1", "call_2"]
    assert first["finish_reason"] == "tool_calls"
    assert second["message"]["content"] == "second choice"
    assert response["usage"]["total_tokens"] == 3
    assert response["id"] == "c"
    assert assembler.finish_reasons() == ["tool_calls", "stop"]
