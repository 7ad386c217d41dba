"""The AWS event-stream decoder: recorded streams, every split point, CRC and framing errors."""

from __future__ import annotations

import json
import struct
import uuid
import zlib

import pytest

from rec_llm_gateway.errors import BadGatewayError
from rec_llm_gateway.providers.bedrock.eventstream import EventStreamDecoder, encode_frame

from ..bedrock_support import event, text_frames
from ..support import traffic_dir

RECORDED = ("openllmetry_converse_stream_claude_tool_use", "pydantic-ai_converse_stream_nova")


def decode_all(data: bytes, step: int | None = None) -> list[tuple[dict, bytes]]:
    decoder = EventStreamDecoder()
    frames = []
    step = step or len(data) or 1
    for start in range(0, len(data), step):
        frames += decoder.feed(data[start : start + step])
    decoder.close()
    return frames


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_streams_decode_like_the_reference(name: str) -> None:
    folder = traffic_dir()
    if folder is None:
        pytest.skip("no recorded traffic (support.traffic_dir)")
    raw = (folder / "bedrock" / f"{name}.response.eventstream.bin").read_bytes()
    expected = [
        json.loads(line)
        for line in (folder / "bedrock" / f"{name}.response.decoded.jsonl").read_text().splitlines()
    ]
    for step in (None, 1, 7, 100):
        frames = decode_all(raw, step)
        assert [headers for headers, _ in frames] == [item["headers"] for item in expected]
        assert [json.loads(payload) for _, payload in frames] == [item["payload"] for item in expected]
    # encode_frame (used by the fake upstreams) reproduces the recorded bytes exactly
    assert b"".join(encode_frame(headers, payload) for headers, payload in decode_all(raw)) == raw


def test_every_split_point_of_a_synthetic_stream() -> None:
    raw = b"".join(text_frames(["Hello", " world"]))
    whole = decode_all(raw)
    assert [headers[":event-type"] for headers, _ in whole] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    for cut in range(1, len(raw)):
        decoder = EventStreamDecoder()
        frames = decoder.feed(raw[:cut]) + decoder.feed(raw[cut:])
        decoder.close()
        assert frames == whole


def test_a_corrupted_payload_fails_the_message_crc() -> None:
    frame = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    frame[-10] ^= 0x01  # a bit flipped in the payload
    with pytest.raises(BadGatewayError) as caught:
        EventStreamDecoder().feed(bytes(frame))
    assert caught.value.status_code == 502
    assert "message CRC" in caught.value.message
    assert caught.value.code == "invalid_event_stream"


def test_a_corrupted_prelude_fails_before_waiting_for_a_bogus_length() -> None:
    frame = bytearray(event("messageStart", {"role": "assistant"}))
    frame[1] ^= 0x7F  # the total length now claims megabytes
    with pytest.raises(BadGatewayError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(frame[:12]))


def test_a_wrong_message_crc_value() -> None:
    frame = event("messageStart", {"role": "assistant"})
    broken = frame[:-4] + struct.pack(">I", (zlib.crc32(frame[:-4]) + 1) & 0xFFFFFFFF)
    with pytest.raises(BadGatewayError, match="message CRC"):
        EventStreamDecoder().feed(broken)


def test_a_stream_cut_inside_a_frame() -> None:
    frame = event("messageStart", {"role": "assistant"})
    decoder = EventStreamDecoder()
    assert decoder.feed(frame + frame[:20]) != []
    with pytest.raises(BadGatewayError, match="ended inside a frame"):
        decoder.close()


def test_an_impossible_length_with_a_valid_prelude_crc() -> None:
    prelude = struct.pack(">II", 8, 0)
    with pytest.raises(BadGatewayError, match="impossible frame length"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)) + b"\0" * 8)


def _frame_with_raw_headers(raw_headers: bytes, payload: bytes = b"{}") -> bytes:
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def test_every_header_value_type() -> None:
    ident = uuid.uuid4()

    def header(name: str, kind: int, value: bytes) -> bytes:
        return bytes([len(name)]) + name.encode() + bytes([kind]) + value

    raw = b"".join(
        [
            header("t", 0, b""),
            header("f", 1, b""),
            header("b", 2, struct.pack(">b", -3)),
            header("s", 3, struct.pack(">h", -300)),
            header("i", 4, struct.pack(">i", 70000)),
            header("l", 5, struct.pack(">q", 2**40)),
            header("bytes", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            header("str", 7, struct.pack(">H", 2) + "é".encode()),
            header("ts", 8, struct.pack(">q", 1700000000000)),
            header("id", 9, ident.bytes),
        ]
    )
    [(headers, payload)] = EventStreamDecoder().feed(_frame_with_raw_headers(raw))
    assert headers == {
        "t": True, "f": False, "b": -3, "s": -300, "i": 70000, "l": 2**40,
        "bytes": b"\x00\x01\x02", "str": "é", "ts": 1700000000000, "id": ident,
    }  # fmt: skip
    assert payload == b"{}"


@pytest.mark.parametrize(
    "raw_headers",
    [
        b"\x01a\x0e",  # unknown value type 14
        b"\x01a\x07\x00\x09abc",  # a string longer than the header block
        b"\x05ab",  # a name longer than the header block
        b"\x01a\x07\x00\x02\xff\xfe",  # not UTF-8
    ],
)
def test_malformed_headers_are_a_502(raw_headers: bytes) -> None:
    with pytest.raises(BadGatewayError, match="corrupt event stream"):
        EventStreamDecoder().feed(_frame_with_raw_headers(raw_headers))


def test_repeated_header_blocks_are_parsed_once() -> None:
    decoder = EventStreamDecoder()
    frames = decoder.feed(b"".join(text_frames(["a", "b", "c"])))
    deltas = [headers for headers, _ in frames if headers[":event-type"] == "contentBlockDelta"]
    assert len(deltas) == 3 and deltas[0] is deltas[1] is deltas[2]
