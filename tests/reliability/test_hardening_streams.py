"""Issue 16 (items 6, 7, 9, 14): what a hostile upstream can do to a stream, and what it may echo.

Each test drives one provider over ``httpx.MockTransport`` like ``test_fault_regressions.py``; the
upstream property suite (``test_fuzz_upstream.py``) covers the class end to end.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import given

from rec_llm_gateway.errors import BadGatewayError, GatewayError
from rec_llm_gateway.providers import shapes

from ..fuzz_support import fuzz_settings
from ..support import chunks, count_cases
from ..upstream_fuzz_support import mutated, openai_events
from .test_fault_regressions import PLAIN_KEY, Frames, call_for, provider, serving, sse

SSE_HEADERS = {"content-type": "text/event-stream"}


async def drain(openai_stream: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in openai_stream]


# -- 6: the cap counts decompressed bytes; one SSE line is capped -----------------------------------


async def test_a_compressed_stream_is_capped_after_decompression() -> None:
    """20 MB of events in ~100 KB of gzip: the 1 MiB cap used to count the compressed bytes."""
    body = gzip.compress(b"".join(sse(chunks(["x" * 1000] * 20_000))))
    assert len(body) < 1 << 20

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={**SSE_HEADERS, "content-encoding": "gzip"}, content=body)

    async with serving(answer) as http:
        call = call_for(http, stream=True, limit=1 << 20)
        with pytest.raises(BadGatewayError, match="larger than 1048576 bytes"):
            await drain(provider({"type": "openai", "base_url": "http://o.test/v1"}).stream(call))


async def test_a_compressed_json_answer_is_capped_after_decompression() -> None:
    body = gzip.compress(json.dumps({"id": "x", "pad": "y" * 5_000_000}).encode())

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=body)

    async with serving(answer) as http:
        with pytest.raises(BadGatewayError, match="larger than"):
            await provider({"type": "openai", "base_url": "http://o.test/v1"}).complete(
                call_for(http, limit=1 << 20)
            )


@pytest.mark.parametrize("newline", [False, True], ids=["never-ends", "ends-too-late"])
async def test_one_sse_line_longer_than_max_event_bytes_is_a_502(newline: bool) -> None:
    line = [b"data: " + b"y" * 200_000 + (b"\n\n" if newline else b"")]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, stream=Frames([*sse(chunks(["a"])[:1]), *line]))

    async with serving(answer) as http:
        call = call_for(http, stream=True, limit=1 << 24)
        call.max_event_bytes = 65_536
        with pytest.raises(BadGatewayError) as raised:
            await drain(provider({"type": "openai", "base_url": "http://o.test/v1"}).stream(call))
    assert raised.value.code == "upstream_event_too_large"


# -- 7: a long line in small pieces is linear -------------------------------------------------------


async def test_a_long_line_in_small_pieces_is_parsed_in_linear_time() -> None:
    """A 12 MB line in 1 KiB reads (under the default 16 MiB event cap) cost tens of seconds of CPU
    when every read was joined to the pending line; the bound is generous (the failure hunted is a
    hang, as in the fault suites)."""
    content = json.dumps(chunks(["z" * 12_000_000])[1]).encode()
    pieces = [b"data: "] + [content[at : at + 1024] for at in range(0, len(content), 1024)] + [b"\n\n"]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE_HEADERS, stream=Frames(pieces))

    async with serving(answer) as http:
        call = call_for(http, stream=True, limit=1 << 26)
        started = time.process_time()
        received = await drain(provider({"type": "openai", "base_url": "http://o.test/v1"}).stream(call))
        spent = time.process_time() - started
    assert len(received[0]["choices"][0]["delta"]["content"]) == 12_000_000
    assert spent < 8, f"{spent:.1f} s of CPU for one 12 MB line"


# -- 9: every field and header that comes from an upstream is scrubbed ------------------------------


ECHOING_ERRORS = {
    "openai": {
        "error": {
            "message": "bad request",
            "type": f"auth {PLAIN_KEY}",
            "param": f"Authorization: Bearer {PLAIN_KEY}",
            "code": f"key_{PLAIN_KEY}",
        }
    },
    "anthropic": {"type": "error", "error": {"type": f"t {PLAIN_KEY}", "message": "no"}},
    "gemini": {"error": {"code": 400, "message": "no", "status": f"S {PLAIN_KEY}"}},
}


@pytest.mark.parametrize("kind", sorted(ECHOING_ERRORS))
@pytest.mark.parametrize("status", [400, 429, 500])
async def test_every_field_of_an_upstream_error_is_scrubbed(kind: str, status: int) -> None:
    upstream = provider({"type": kind, "api_key": PLAIN_KEY, "base_url": "http://upstream.test"})

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"retry-after": "1", "x-echo": PLAIN_KEY}
        return httpx.Response(status, json=ECHOING_ERRORS[kind], headers=headers)

    async with serving(answer) as http:
        with pytest.raises(GatewayError) as raised:
            await upstream.complete(call_for(http))
    error = raised.value
    shown = json.dumps(error.to_dict()) + json.dumps(error.headers)
    assert PLAIN_KEY not in shown


# -- 14: the per-chunk shape check's fast path agrees with the thorough one ---------------------------


@fuzz_settings(300)
@given(chunk=mutated(openai_events()[1], 3))
def test_the_fast_chunk_check_never_accepts_what_the_thorough_one_refuses(chunk: Any) -> None:
    count_cases("fuzz: chunk shape checks")
    try:
        shapes._check_chunk_thoroughly(chunk, "p")
    except BadGatewayError:
        with pytest.raises(BadGatewayError):
            shapes.check_chunk(chunk, "p")
    else:
        shapes.check_chunk(chunk, "p")


# -- 6, 7: the native /v1/messages pass-through parses its SSE in linear time, capped per event ---------


async def _native_frames(pieces: list[bytes], event_limit: int) -> list[Any]:
    from rec_llm_gateway.messages.native import AnthropicTarget
    from rec_llm_gateway.providers.http import _CappedStream

    anthropic = provider({"type": "anthropic", "api_key": "k", "base_url": "http://a.test"})
    response = httpx.Response(200, headers=SSE_HEADERS, stream=Frames(pieces))
    response.stream = _CappedStream(response.stream, 1 << 26, event_limit)  # type: ignore[arg-type]
    return [events async for events in AnthropicTarget(anthropic).frames(response)]


async def test_native_messages_stream_a_long_event_in_small_pieces_is_linear() -> None:
    data = json.dumps({"type": "content_block_delta", "delta": {"text": "z" * 12_000_000}}).encode()
    pieces = [b"event: content_block_delta\ndata: "]
    pieces += [data[at : at + 1024] for at in range(0, len(data), 1024)] + [b"\n\n"]
    started = time.process_time()
    [[(raw, payload)]] = await _native_frames(pieces, 1 << 25)
    spent = time.process_time() - started
    assert payload == data and raw.endswith(b"\n\n")
    assert spent < 8, f"{spent:.1f} s of CPU for one 12 MB event"


async def test_native_messages_stream_event_over_the_cap_is_a_502() -> None:
    pieces = [b"event: ping\ndata: {}\n\n", b"event: x\ndata: " + b"y" * 100_000]
    with pytest.raises(BadGatewayError) as raised:
        await _native_frames(pieces, 65_536)
    assert raised.value.code == "upstream_event_too_large"
