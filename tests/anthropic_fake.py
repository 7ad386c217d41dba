"""A fake Anthropic Messages API for ``FakeUpstream``: Anthropic's wire format, and its strictness.

``anthropic_upstream`` checks each request the way the real API does (auth, ``anthropic-version``,
known top-level fields only, ``max_tokens``, alternating roles, tool results answering the previous
turn's tool uses, non-empty text) and answers with a message or an SSE stream whose JSON is padded
with spaces like Anthropic's. What it answers:

- the last user turn holds tool results: ``tool results: <contents>``;
- ``tool_choice`` names a tool: a call of it (``{"answer": <last text>}``);
- tools are offered and the text mentions "weather" (or ``tool_choice`` is ``any``): a call of the
  first tool per city in "Paris" / "Rome" (at least one);
- otherwise the last user text, then ``[images: <source types>]`` when images were sent.

Usage always reports 10 fresh input tokens, 2 written to and 4 read from the cache.
"""

from __future__ import annotations

import json
from typing import Any

from .support import Recorded, Reply

API_KEY = "sk-ant-test-FAKEKEY-0123456789"
INPUT, CACHE_WRITE, CACHE_READ = 10, 2, 4

TOP_LEVEL = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "service_tier",
        "output_config",
        "context_management",
        "container",
        "mcp_servers",
    }
)


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}
    return Reply(status=status, json=body, headers=headers or {})


def anthropic_upstream(request: Recorded) -> Reply:
    if request.method == "GET" and request.path == "/v1/models":
        if request.headers.get("x-api-key") != API_KEY:
            return error(401, "authentication_error", "invalid x-api-key")
        return Reply(json={"data": [{"id": "claude-sonnet-4-5-20250929", "type": "model"}], "has_more": True})
    if request.path != "/v1/messages":
        return error(404, "not_found_error", f"no route {request.path}")
    if request.headers.get("x-api-key") != API_KEY:
        return error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return error(400, "invalid_request_error", "anthropic-version: header is required")
    body = request.json
    problem = validate(body)
    if problem:
        return error(400, "invalid_request_error", problem)
    blocks, stop_reason = answer(body)
    if body.get("stream"):
        return Reply(sse=stream_frames(body["model"], blocks, stop_reason))
    return Reply(json=message(body["model"], blocks, stop_reason))


def validate(body: dict[str, Any]) -> str | None:
    """The first thing the real API would refuse, or ``None``."""
    for key in body:
        if key not in TOP_LEVEL:
            return f"{key}: Extra inputs are not permitted"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()
    previous = None
    for position, turn in enumerate(messages):
        role = turn.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{position}.role: Input should be 'user' or 'assistant'"
        if role == previous:
            return "messages: roles must alternate between 'user' and 'assistant'"
        previous = role
        content = turn.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not content:
            return f"messages.{position}: all messages must have non-empty content"
        answered = set()
        for index, block in enumerate(content):
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{position}.content.{index}.text: text content blocks must be non-empty"
            if kind == "tool_result":
                if index != len(answered):
                    return f"messages.{position}: tool_result blocks must come first"
                answered.add(block.get("tool_use_id"))
            if kind == "tool_use" and not isinstance(block.get("input"), dict):
                return f"messages.{position}.content.{index}.input: Input should be an object"
        if pending and answered != pending:
            return (
                f"messages.{position}: tool_use ids without tool_result blocks: {sorted(pending - answered)}"
            )
        pending = (
            {block["id"] for block in content if block.get("type") == "tool_use"}
            if role == "assistant"
            else set()
        )
    for tool in body.get("tools") or ():
        if not tool.get("name") or tool.get("input_schema", {}).get("type") != "object":
            return "tools: each tool needs a name and an object input_schema"
    choice = body.get("tool_choice")
    if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice.type: invalid"
    return None


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    last = body["messages"][-1]
    content = last["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    results = [block for block in content if block.get("type") == "tool_result"]
    text = " ".join(block["text"] for block in content if block.get("type") == "text")
    if results:
        return [
            {"type": "text", "text": "tool results: " + ", ".join(_result_text(r) for r in results)}
        ], "end_turn"
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        call = {"type": "tool_use", "id": "toolu_forced", "name": choice["name"], "input": {"answer": text}}
        return [call], "tool_use"
    if tools and (choice.get("type") == "any" or "weather" in text):
        cities = [city for city in ("Paris", "Rome") if city in text] or ["Paris"]
        calls = [
            {"type": "tool_use", "id": f"toolu_{index}", "name": tools[0]["name"], "input": {"city": city}}
            for index, city in enumerate(cities)
        ]
        return [{"type": "text", "text": "Let me check."}, *calls], "tool_use"
    images = [block["source"] for block in content if block.get("type") == "image"]
    if images:
        kinds = ",".join(
            source["url"] if source["type"] == "url" else f"base64:{source['media_type']}"
            for source in images
        )
        text = f"{text} [images: {kinds}]"
    words = text.split(" ")
    if len(words) > body["max_tokens"]:
        return [{"type": "text", "text": " ".join(words[: body["max_tokens"]])}], "max_tokens"
    return [{"type": "text", "text": text}], "end_turn"


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


def _usage(output: int) -> dict[str, Any]:
    return {
        "input_tokens": INPUT,
        "cache_creation_input_tokens": CACHE_WRITE,
        "cache_read_input_tokens": CACHE_READ,
        "output_tokens": output,
        "service_tier": "standard",
    }


def _output_tokens(blocks: list[dict[str, Any]]) -> int:
    return sum(len(block.get("text", "").split()) + len(block.get("input", {})) for block in blocks)


def message(model: str, blocks: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": f"{model}-20250929",
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(_output_tokens(blocks)),
    }


def frame(event: dict[str, Any]) -> str:
    """One SSE frame as Anthropic sends it: an ``event:`` line, and JSON padded before its last brace."""
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data[:-1]}{' ' * 7}}}\n\n"


def stream_frames(
    model: str, blocks: list[dict[str, Any]], stop_reason: str
) -> list[bytes | str | dict[str, Any]]:
    start = message(model, [], None)  # type: ignore[arg-type]
    start["usage"] = {**_usage(1)}
    frames: list[bytes | str | dict[str, Any]] = [frame({"type": "message_start", "message": start})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            frames.append(
                frame(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    }
                )
            )
            if index == 0:
                frames.append(frame({"type": "ping"}))
            words = block["text"].split(" ")
            for position, word in enumerate(words):
                piece = word if position == 0 else f" {word}"
                delta = {"type": "text_delta", "text": piece}
                frames.append(frame({"type": "content_block_delta", "index": index, "delta": delta}))
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            frames.append(frame({"type": "content_block_start", "index": index, "content_block": opening}))
            arguments = json.dumps(block["input"])
            for piece in ("", arguments[:5], arguments[5:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                frames.append(frame({"type": "content_block_delta", "index": index, "delta": delta}))
        frames.append(frame({"type": "content_block_stop", "index": index}))
    delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    frames.append(frame({**delta, "usage": {"output_tokens": _output_tokens(blocks)}}))
    frames.append(frame({"type": "message_stop"}))
    return frames
