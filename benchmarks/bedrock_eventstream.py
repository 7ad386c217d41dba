"""Per-event cost of the Bedrock stream hot path: event-stream decoding and ``feed()`` translation.

    python benchmarks/bedrock_eventstream.py

Compares the gateway's decoder with botocore's ``EventStreamBuffer`` (whole body at once, and one
network read per frame), then times ``ConverseStreamTranslator.feed`` per event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from rec_llm_gateway.providers.bedrock.eventstream import EventStreamDecoder, encode_frame
from rec_llm_gateway.providers.bedrock.stream import ConverseStreamTranslator


def frame(event_type: str, payload: dict[str, object]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps({**payload, "p": "abcdefghijklmnopqrstuvwxyz"}).encode())


FRAMES = [
    frame("messageStart", {"role": "assistant"}),
    *(
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" word{i}"}})
        for i in range(200)
    ),
    frame("contentBlockStop", {"contentBlockIndex": 0}),
    frame("messageStop", {"stopReason": "end_turn"}),
    frame(
        "metadata",
        {"usage": {"inputTokens": 10, "outputTokens": 200, "totalTokens": 210}, "metrics": {"latencyMs": 1}},
    ),
]
BODY = b"".join(FRAMES)


def per_event(label: str, run: Callable[[], None], repeat: int = 300) -> None:
    run()
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    elapsed = (time.perf_counter() - started) / repeat / len(FRAMES)
    print(f"{label:<48} {elapsed * 1e6:7.2f} us/event")


def ours_whole() -> None:
    EventStreamDecoder().feed(BODY)


def ours_per_read() -> None:
    decoder = EventStreamDecoder()
    for data in FRAMES:
        decoder.feed(data)


def botocore_whole() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(BODY)
    for message in buffer:
        _ = message.headers, message.payload


def botocore_per_read() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    for data in FRAMES:
        buffer.add_data(data)
        for message in buffer:
            _ = message.headers, message.payload


DECODED = EventStreamDecoder().feed(BODY)


def translate() -> None:
    translator = ConverseStreamTranslator(
        model="m", response_id="chatcmpl-1", created=0, json_tool=None, provider="b"
    )
    for item in DECODED:
        translator.feed(item)


def main() -> None:
    per_event("decode, gateway decoder, whole body", ours_whole)
    per_event("decode, gateway decoder, one read per frame", ours_per_read)
    try:
        per_event("decode, botocore EventStreamBuffer, whole body", botocore_whole)
        per_event("decode, botocore EventStreamBuffer, per frame", botocore_per_read)
    except ImportError:
        print("botocore not installed: skipped its decoder")
    per_event("ConverseStreamTranslator.feed", translate)


if __name__ == "__main__":
    main()
