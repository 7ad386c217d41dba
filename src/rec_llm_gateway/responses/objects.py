"""Response objects: the skeleton echoed from a request, output items, usage, and a chat completion
turned into a whole Response.

    reasoning_content   -> a ``reasoning`` item (its text as a summary)
    content / refusal   -> a ``message`` item with ``output_text`` / ``refusal`` parts
    tool_calls          -> ``function_call`` items (``call_id`` is the chat tool call's id)
    finish_reason       -> status ``completed``; ``length`` / ``content_filter`` -> ``incomplete``
                           with ``incomplete_details.reason`` ``max_output_tokens`` / ``content_filter``
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..errors import GatewayError
from ..usage import TokenUsage, token_count
from .wire import ResponsesRequest

__all__ = [
    "apply_finish",
    "as_dict",
    "failed_error",
    "function_call_item",
    "message_item",
    "new_id",
    "reasoning_item",
    "response_from_completion",
    "skeleton",
    "usage_from_responses",
    "usage_object",
]

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat finish reasons that make a response ``incomplete``, and the reason it then gives."""


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: ``resp_``, ``msg_``, ``fc_``, ``rs_`` and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def skeleton(request: ResponsesRequest, response_id: str, model: str) -> dict[str, Any]:
    """A Response in progress, echoing the request's settings the way OpenAI does."""
    text = (
        request.text.model_dump(mode="json", by_alias=True, exclude_none=True)
        if request.text is not None
        else {}
    )
    text.setdefault("format", {"type": "text"})
    reasoning = request.reasoning
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls
        if request.parallel_tool_calls is not None
        else True,
        "previous_response_id": request.previous_response_id,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": reasoning.summary if reasoning else None,
        },
        "store": request.stores,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": text,
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": request.tools or [],
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": request.user,
    }


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``extra``: provider fields of the chat tool call (Gemini's ``extra_content``), kept so that they
    come back with the item in the next turn."""
    item = {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }
    if extra:
        item.update({key: value for key, value in extra.items() if key not in item})
    return item


def reasoning_item(item_id: str, summary: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}]}


def usage_object(usage: TokenUsage | None) -> dict[str, Any] | None:
    """The gateway's usage as a Responses ``usage`` object."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def usage_from_responses(usage: Any) -> TokenUsage | None:
    """A Responses ``usage`` object (from a native upstream) in the gateway's terms."""
    if not isinstance(usage, dict):
        return None
    prompt = token_count(usage.get("input_tokens"))
    completion = token_count(usage.get("output_tokens"))
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    input_details = input_details if isinstance(input_details, dict) else {}
    output_details = output_details if isinstance(output_details, dict) else {}
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=token_count(usage.get("total_tokens")) or prompt + completion,
        cached_tokens=token_count(input_details.get("cached_tokens")),
        cache_write_tokens=token_count(input_details.get("cache_write_tokens")),
        reasoning_tokens=token_count(output_details.get("reasoning_tokens")),
    )


def apply_finish(response: dict[str, Any], finish_reason: str | None, usage: TokenUsage | None) -> None:
    """Set the final status (``completed`` / ``incomplete``) and usage of ``response``."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    if not reason:
        response["completed_at"] = int(time.time())
    response["usage"] = usage_object(usage)


def failed_error(error: GatewayError) -> dict[str, Any]:
    """``response.error`` of a failed response: OpenAI's codes are few, the gateway's own is kept in
    the message."""
    if error.status_code == 429:
        code = "rate_limit_exceeded"
    elif error.status_code < 500:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": error.message}


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (upstream JSON is not trusted)."""
    return value if isinstance(value, dict) else {}


def response_from_completion(
    completion: dict[str, Any], base: dict[str, Any], usage: TokenUsage | None
) -> dict[str, Any]:
    """A ``chat.completion`` as the Response ``base`` (a ``skeleton``) finished with its output."""
    response = dict(base)
    if isinstance(completion.get("model"), str) and completion["model"]:
        response["model"] = completion["model"]
    choices = completion.get("choices") or [{}]
    choice = as_dict(choices[0])
    message = as_dict(choice.get("message"))
    finish_reason = choice.get("finish_reason")
    status = "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(new_id("rs"), reasoning))
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with parts
        content = "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    if isinstance(content, str) and content:
        parts.append(text_part(content))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item(new_id("msg"), parts, status))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = as_dict(call.get("function"))
        extra = {key: value for key, value in call.items() if key not in ("id", "type", "function", "index")}
        output.append(
            function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
                extra,
            )
        )
    response["output"] = output
    apply_finish(response, finish_reason, usage)
    return response
