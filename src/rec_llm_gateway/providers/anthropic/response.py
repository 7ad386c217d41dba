"""Anthropic Messages answers -> OpenAI shapes: the complete message, usage and errors (pure
functions; the stream is ``stream``)."""

from __future__ import annotations

import json
import time
from typing import Any, Final

import httpx

from ...errors import BadGatewayError, GatewayError
from ...usage import TokenUsage
from ..upstream_errors import upstream_status_error

__all__ = [
    "FINISH_REASONS",
    "error_from_anthropic",
    "from_anthropic",
    "stream_error_from_anthropic",
    "usage_from_anthropic",
]

FINISH_REASONS: Final[dict[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# For errors inside a stream (no HTTP status of their own): the status Anthropic uses for each type.
STATUS_BY_ERROR_TYPE: Final[dict[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def usage_from_anthropic(usage: Any) -> TokenUsage | None:
    """Anthropic ``usage`` in OpenAI terms (``input_tokens`` excludes cache reads and writes)."""
    if not isinstance(usage, dict):
        return None
    return TokenUsage.from_uncached(
        usage.get("input_tokens"),
        usage.get("cache_read_input_tokens"),
        usage.get("cache_creation_input_tokens"),
        usage.get("output_tokens"),
    )


def from_anthropic(data: Any, json_tool: str | None = None) -> tuple[dict[str, Any], TokenUsage | None]:
    """An Anthropic ``message`` as an OpenAI ``chat.completion`` and its usage.

    A call of ``json_tool`` (the ``response_format`` carrier) becomes the message content.
    """
    if not isinstance(data, dict) or data.get("type") == "error" or not isinstance(data.get("content"), list):
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise stream_error_from_anthropic(data["error"])
        raise BadGatewayError("the upstream returned a body that is not an Anthropic message")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in data["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            if block["name"] == json_tool:
                texts.append(arguments)
            else:
                tool_calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {"name": block["name"], "arguments": arguments},
                    }
                )
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking_blocks.append(block)
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
        # server tool blocks (web search and the like) have no OpenAI form; their text is in text blocks
    stop_reason = data.get("stop_reason")
    finish = FINISH_REASONS.get(stop_reason or "", "stop")
    if finish == "tool_calls" and not tool_calls:
        finish = "stop"  # only the JSON-output tool was called: that is the answer
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        # Sent back on the next turn (see the request side) so tool use with thinking keeps working.
        message["thinking_blocks"] = thinking_blocks
    usage = usage_from_anthropic(data.get("usage"))
    response: dict[str, Any] = {
        "id": data.get("id") or "",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or "",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        response["usage"] = usage.to_openai()
    return response, usage


# -- errors ---------------------------------------------------------------------------------------


def error_from_anthropic(status: int, headers: httpx.Headers, body: bytes, provider: str) -> GatewayError:
    """An Anthropic error response (``{"type": "error", "error": {"type", "message"}}``) as the error
    the client sees: the status kept (5xx -> 502, 529 -> 503), Anthropic's message and error type."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = ""
    error_type: str | None = None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        error_type = str(error["type"]) if error.get("type") else None
    if not message:
        text = body[:300].decode("utf-8", "replace").strip() if data is None else ""
        message = f"upstream '{provider}' returned HTTP {status}" + (f": {text}" if text else "")
    result = upstream_status_error(
        status, message, provider=provider, error_type=error_type, retry_after=headers.get("retry-after")
    )
    if error_type:
        result.error_type = error_type  # for 5xx too: "overloaded_error" tells more than "upstream_error"
    return result


def stream_error_from_anthropic(error: Any, provider: str = "anthropic") -> GatewayError:
    """An ``error`` event inside a stream, mapped with the status Anthropic gives its type."""
    if not isinstance(error, dict):
        return BadGatewayError("the upstream reported an error mid-stream")
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or "the upstream reported an error mid-stream")
    status = STATUS_BY_ERROR_TYPE.get(error_type, 500)
    result = upstream_status_error(status, message, provider=provider, error_type=error_type)
    result.error_type = error_type
    return result
