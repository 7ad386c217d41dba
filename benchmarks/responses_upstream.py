"""The fake upstream's ``/v1/responses``: a minimal Responses API answer, JSON and typed SSE events
in the order OpenAI sends them (``response.created`` ... ``response.output_text.delta`` ...
``response.completed``, each with its ``sequence_number``), as tests/responses_fake.py records them."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from .servers import stamp

_BASE = {
    "id": "resp_bench",
    "object": "response",
    "created_at": 1700000000,
    "model": "gpt-4o-mini",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "metadata": {},
    "text": {"format": {"type": "text"}},
    "previous_response_id": None,
    "store": True,
}
_TEXT = "Hello! How can I help you today?"


def _message(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"id": "msg_bench", "type": "message", "status": status, "role": "assistant", "content": content}


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12 + output_tokens,
    }


RESPONSE = json.dumps(
    {**_BASE, "status": "completed", "output": [_message(_TEXT)], "usage": _usage(9)}
).encode()


def responses_frames(count: int) -> tuple[bytes, list[Callable[[], bytes]], bytes]:
    """(first frames, token frames built at send time, closing frames) of a Responses stream."""
    numbers = iter(range(1_000_000))

    def frame(data: dict[str, Any], number: int | None = None) -> bytes:
        data["sequence_number"] = next(numbers) if number is None else number
        return f"event: {data['type']}\ndata: ".encode() + json.dumps(data).encode() + b"\n\n"

    started = {**_BASE, "status": "in_progress", "output": [], "usage": None}
    part = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    first = b"".join(
        [
            frame({"type": "response.created", "response": started}),
            frame({"type": "response.in_progress", "response": started}),
            frame(
                {"type": "response.output_item.added", "output_index": 0, "item": _message("", "in_progress")}
            ),
            frame(
                {
                    "type": "response.content_part.added",
                    **part,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                }
            ),
        ]
    )

    def token(number: int) -> bytes:
        delta = {"type": "response.output_text.delta", **part, "delta": stamp(), "logprobs": []}
        return frame(delta, number)

    tokens: list[Callable[[], bytes]] = [functools.partial(token, number) for number in range(4, 4 + count)]
    numbers = iter(range(4 + count, 1_000_000))  # the closing events follow the deltas
    # the closing events repeat the text; the stamps are not known here, a stand-in is as large
    text = "t0000000000000000 " * count
    done = _message(text)
    closing = b"".join(
        [
            frame({"type": "response.output_text.done", **part, "text": text, "logprobs": []}),
            frame({"type": "response.content_part.done", **part, "part": done["content"][0]}),
            frame({"type": "response.output_item.done", "output_index": 0, "item": done}),
            frame(
                {
                    "type": "response.completed",
                    "response": {**_BASE, "status": "completed", "output": [done], "usage": _usage(count)},
                }
            ),
        ]
    )
    return first, tokens, closing
