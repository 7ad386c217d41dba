"""A fake OpenAI Responses API (``POST /v1/responses``) for ``FakeUpstream``: Response objects and
typed SSE events as OpenAI sends them. What it answers:

- the last input item is a ``function_call_output``: ``tool said: <output>``;
- function tools are offered and the text mentions "weather": a ``get_weather``-style call of the
  first function tool for Paris;
- ``text.format`` is a JSON schema: ``{"answer": "<last text>"}``;
- otherwise the last user text (with ``[reasoning]`` summary first when ``reasoning`` is set).

It refuses what OpenAI would refuse from the gateway: a ``previous_response_id`` it never issued
(the gateway sends stored history inline), a function call output whose call is not in the input.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from .support import Recorded, Reply

API_KEY = "sk-test-openai-responses-0123456789"
_IDS = itertools.count(1)


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> Reply:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return Reply(status=status, json=body)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def responses_upstream(request: Recorded) -> Reply:
    if request.path not in ("/v1/responses", "/openai/v1/responses") or request.method != "POST":
        return error(404, f"no route {request.path}")
    azure = request.path.startswith("/openai/")  # Azure's v1 API: the key in api-key, no api-version
    if azure and (request.headers.get("api-key") != API_KEY or "api-version" in request.query):
        return Reply(status=401, json={"error": {"code": "401", "message": "Access denied: bad api-key."}})
    if not azure and request.headers.get("authorization") != f"Bearer {API_KEY}":
        return Reply(
            status=401,
            json={
                "error": {
                    "message": "bad key",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    body = request.json
    if body.get("previous_response_id"):
        return error(
            400,
            f"Previous response with id '{body['previous_response_id']}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    calls = {item["call_id"] for item in items if item.get("type") == "function_call"}
    for index, item in enumerate(items):
        if item.get("type") == "function_call_output" and item["call_id"] not in calls:
            return error(
                400,
                f"No tool call found for function call output with call_id {item['call_id']}.",
                f"input[{index}]",
            )
    output = answer(body, items)
    usage = {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 1 if body.get("reasoning") else 0},
        "total_tokens": 18,
    }
    response = {
        "id": f"resp_fake{next(_IDS)}",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": body["model"] + "-2025",
        "output": output,
        "usage": usage,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "metadata": {},
        "text": body.get("text") or {"format": {"type": "text"}},
        "previous_response_id": None,
        "store": body.get("store", True),
    }
    if body.get("stream"):
        return Reply(sse=stream_frames(response), content_type="text/event-stream")
    return Reply(json=response)


def answer(body: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = items[-1]
    if last.get("type") == "function_call_output":
        return [message(f"tool said: {_text(last['output'])}")]
    text = next((_text(item["content"]) for item in reversed(items) if item.get("role") == "user"), "")
    functions = [tool for tool in body.get("tools") or () if tool.get("type") == "function"]
    if functions and "weather" in text:
        return [
            {
                "id": "fc_fake1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_fake1",
                "name": functions[0]["name"],
                "arguments": json.dumps({"city": "Paris"}),
            }
        ]
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        return [message(json.dumps({"answer": text}))]
    output = [message(text)]
    if body.get("reasoning"):
        output.insert(
            0,
            {
                "id": "rs_fake1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "pondering"}],
            },
        )
    return output


def message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_fake1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def stream_frames(response: dict[str, Any]) -> list[bytes | str | dict[str, Any]]:
    """The events OpenAI sends for ``response``, each as ``event: <type>`` + ``data:``."""
    events: list[dict[str, Any]] = []
    start = {**response, "status": "in_progress", "output": [], "usage": None}
    events += [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for index, item in enumerate(response["output"]):
        where = {"output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events.append(
                {
                    "type": "response.output_item.added",
                    **where,
                    "item": {**item, "content": [], "status": "in_progress"},
                }
            )
            part = {"item_id": item["id"], **where, "content_index": 0}
            events.append(
                {
                    "type": "response.content_part.added",
                    **part,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                }
            )
            for word in re.findall(r"\S+\s*", text):
                events.append({"type": "response.output_text.delta", **part, "delta": word, "logprobs": []})
            events.append({"type": "response.output_text.done", **part, "text": text, "logprobs": []})
            events.append({"type": "response.content_part.done", **part, "part": item["content"][0]})
        elif item["type"] == "function_call":
            events.append(
                {
                    "type": "response.output_item.added",
                    **where,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item["id"],
                    **where,
                    "delta": item["arguments"],
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    **where,
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", **where, "item": item})
    events.append({"type": "response.completed", "response": response})
    return [
        f"event: {event['type']}\ndata: {json.dumps({**event, 'sequence_number': number})}\n\n"
        for number, event in enumerate(events)
    ]
