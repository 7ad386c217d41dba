"""Fake upstreams for the ``/v1/messages`` tests.

- ``claude_upstream``: Claude at three doors, each answering the way its door does: Anthropic's API
  (``/v1/messages``, ``/v1/messages/count_tokens``), Bedrock's InvokeModel (``/model/{id}/invoke``,
  ``/invoke-with-response-stream`` in AWS event-stream frames, ``/count-tokens``) and Vertex's
  ``publishers/anthropic/models/{model}:rawPredict`` / ``:streamRawPredict`` (with an OAuth token
  endpoint at ``/token``). Answers are ``anthropic_fake``'s; with thinking on, a signed thinking block
  comes first. Each door checks what its API requires of the body.
- ``openai_upstream``: an OpenAI chat API that calls the first tool when the text mentions weather,
  reports tool results, counts images and reasons when ``reasoning_effort`` is set.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from rec_llm_gateway.providers.bedrock.eventstream import encode_frame

from . import anthropic_fake
from .anthropic_fake import API_KEY, frame, message, validate
from .support import Recorded, Reply

THINKING = {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBRgCKkBsig+/=="}
EVENTSTREAM = "application/vnd.amazon.eventstream"
COUNT = 42


def claude_blocks(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    blocks, stop_reason = anthropic_fake.answer(body)
    if (body.get("thinking") or {}).get("type") == "enabled":
        blocks = [THINKING, *blocks]
    return blocks, stop_reason


def anthropic_events(model: str, blocks: list[dict[str, Any]], stop_reason: str) -> list[dict[str, Any]]:
    """The stream of a message, as event dicts (thinking blocks included)."""
    start = message(model, [], None)  # type: ignore[arg-type]
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(blocks):
        kind = block["type"]
        if kind == "thinking":
            opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "text":
            opening = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            deltas = [{"type": "text_delta", "text": (" " if i else "") + w} for i, w in enumerate(words)]
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            arguments = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in ("", arguments)]
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        if index == 0:
            events.append({"type": "ping"})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": 7}})
    events.append({"type": "message_stop"})
    return events


def error(status: int, error_type: str, text: str) -> Reply:
    return anthropic_fake.error(status, error_type, text)


def claude_upstream(request: Recorded) -> Reply:
    path = request.path
    if path.endswith("/token"):
        return Reply(
            json={"access_token": "ya29.fake-vertex-token", "expires_in": 3599, "token_type": "Bearer"}
        )
    if path.startswith("/v1/messages"):
        return _anthropic(request)
    if path.startswith("/model/"):
        return _bedrock(request)
    if "/publishers/anthropic/models/" in path:
        return _vertex(request)
    return error(404, "not_found_error", f"no route {path}")


def _answer(body: dict[str, Any], model: str, stream: bool, *, bedrock: bool = False) -> Reply:
    fields = {key: value for key, value in body.items() if not key.startswith("anthropic_")}
    problem = validate({**fields, "model": model})
    if problem:
        return error(400, "invalid_request_error", problem)
    last = body["messages"][-1]["content"]
    text = (
        last
        if isinstance(last, str)
        else " ".join(b.get("text", "") for b in last if b.get("type") == "text")
    )
    if text.startswith("fail "):
        status = int(text.split()[1])
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        reply = error(status, kind, f"fake failure {status}")
        if status == 429:
            reply.headers["retry-after"] = "3"
        return reply
    blocks, stop_reason = claude_blocks(body)
    if not stream:
        return Reply(json=message(model, blocks, stop_reason))
    events = anthropic_events(model, blocks, stop_reason)
    if text == "break mid-stream":
        events = [
            *events[:4],
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
    if bedrock:
        frames = [_chunk_frame(event) for event in events if event["type"] != "ping"]
        return Reply(sse=list(frames), content_type=EVENTSTREAM)
    return Reply(sse=[frame(event) for event in events])


def _anthropic(request: Recorded) -> Reply:
    if request.headers.get("x-api-key") != API_KEY:
        return error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return error(400, "invalid_request_error", "anthropic-version: header is required")
    body = request.json
    if request.path == "/v1/messages/count_tokens":
        return Reply(json={"input_tokens": COUNT})
    if "mid-conversation-system" in request.headers.get("anthropic-beta", ""):
        # With this beta (Claude Code sends it) the API takes system turns between the others.
        body = {**body, "messages": [turn for turn in body["messages"] if turn.get("role") != "system"]}
    return _answer(body, body["model"], bool(body.get("stream")))


def _bedrock(request: Recorded) -> Reply:
    model_id, action = request.path[len("/model/") :].rsplit("/", 1)
    body = request.json
    if action == "count-tokens":
        invoke = json.loads(base64.b64decode(body["input"]["invokeModel"]["body"]))
        if invoke.get("anthropic_version") != "bedrock-2023-05-31":
            return Reply(status=400, json={"message": "bad invoke body"})
        return Reply(json={"inputTokens": COUNT + 1})
    if "model" in body or "stream" in body or body.get("anthropic_version") != "bedrock-2023-05-31":
        return Reply(status=400, json={"message": "Malformed input request: extraneous key [model]"})
    return _answer(body, model_id, action == "invoke-with-response-stream", bedrock=True)


def _vertex(request: Recorded) -> Reply:
    if request.headers.get("authorization") != "Bearer ya29.fake-vertex-token":
        return Reply(
            status=401, json={"error": {"code": 401, "message": "no token", "status": "UNAUTHENTICATED"}}
        )
    body = request.json
    name = request.path.rsplit("/", 1)[-1]
    if name == "count-tokens:rawPredict":
        return Reply(json={"input_tokens": COUNT + 2})
    model, action = name.split(":")
    if "model" in body or body.get("anthropic_version") != "vertex-2023-10-16":
        return Reply(
            status=400, json={"error": {"code": 400, "message": "bad body", "status": "INVALID_ARGUMENT"}}
        )
    return _answer(body, model, action == "streamRawPredict")


def _chunk_frame(event: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode(), "p": "abcd"})
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, payload.encode())


# -- an OpenAI chat API ---------------------------------------------------------------------------


def openai_upstream(request: Recorded) -> Reply:
    body = request.json
    messages = body["messages"]
    last = messages[-1]
    content = last.get("content")
    parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    text = " ".join(part.get("text", "") for part in parts if part.get("type") == "text")
    reasoning = "I reason." if body.get("reasoning_effort") else None
    calls: list[dict[str, Any]] = []
    if last["role"] == "tool":
        results = [m["content"] for m in messages if m["role"] == "tool"]
        answer = "tool results: " + ", ".join(results)
    elif body.get("tools") and "weather" in text:
        name = body["tools"][0]["function"]["name"]
        calls = [
            {
                "id": "call_w1",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
        ]
        answer = ""
    else:
        images = [part for part in parts if part.get("type") == "image_url"]
        answer = text + (f" [images: {len(images)}]" if images else "")
    finish = "tool_calls" if calls else "stop"
    usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
    if not body.get("stream"):
        reply: dict[str, Any] = {"role": "assistant", "content": answer or None}
        if reasoning:
            reply["reasoning_content"] = reasoning
        if calls:
            reply["tool_calls"] = calls
        choice = {"index": 0, "message": reply, "finish_reason": finish}
        return Reply(
            json={
                "id": "chatcmpl-o1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [choice],
                "usage": usage,
            }
        )
    base = {"id": "chatcmpl-o1", "object": "chat.completion.chunk", "model": body["model"]}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    frames: list[bytes | str | dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
    if reasoning:
        frames += [chunk({"reasoning_content": "I "}), chunk({"reasoning_content": "reason."})]
    frames += [
        chunk({"content": (" " if i else "") + word}) for i, word in enumerate(answer.split(" ")) if answer
    ]
    for index, call in enumerate(calls):
        opening = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        frames.append(chunk({"tool_calls": [opening]}))
        arguments = call["function"]["arguments"]
        for piece in (arguments[:5], arguments[5:]):
            frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    frames.append(chunk({}, finish))
    frames.append({**base, "choices": [], "usage": usage})
    frames.append("data: [DONE]\n\n")
    return Reply(sse=frames)
