"""Converse answers -> OpenAI shapes: the complete response, the stream, usage, stop reasons, errors.

Stop reasons: ``end_turn``/``stop_sequence`` -> ``stop``; ``max_tokens``/
``model_context_window_exceeded`` -> ``length``; ``tool_use`` -> ``tool_calls`` (``stop`` when the
only tool called is the ``response_format`` stand-in); ``guardrail_intervened``/``content_filtered``
-> ``content_filter``; ``malformed_model_output``/``malformed_tool_use`` -> a 502 (the answer is not
usable, and a 502 lets the router fail over); anything newer -> ``stop``.

The stream translator is on the per-event hot path: plain dicts, no models, one pydantic-core JSON
parse per event.
"""

from __future__ import annotations

import json
from typing import Any, Final

import pydantic_core

from ...errors import BadGatewayError, GatewayError, ServiceUnavailableError
from ...usage import TokenUsage
from ..base import ChatResult, StreamTranslator
from ..upstream_errors import upstream_status_error

__all__ = [
    "ConverseStreamTranslator",
    "finish_reason",
    "parse_converse_response",
    "stream_exception",
    "usage_from",
]

_FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED: Final = frozenset({"malformed_model_output", "malformed_tool_use"})
# In-stream exception -> the HTTP status Bedrock gives the same error outside a stream.
_EXCEPTION_STATUS: Final = {
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 502,
}


def finish_reason(stop_reason: Any) -> str:
    reason = _FINISH_REASONS.get(stop_reason)
    if reason is not None:
        return reason
    if stop_reason in _MALFORMED:
        raise BadGatewayError(
            f"the Bedrock model produced an unusable answer (stopReason {stop_reason})", code=stop_reason
        )
    return "stop"


def usage_from(usage: Any) -> TokenUsage | None:
    """Converse ``usage`` in OpenAI terms (``inputTokens`` excludes cache reads and writes)."""
    if not isinstance(usage, dict):
        return None
    return TokenUsage.from_uncached(
        usage.get("inputTokens"),
        usage.get("cacheReadInputTokens"),
        usage.get("cacheWriteInputTokens"),
        usage.get("outputTokens"),
        usage.get("totalTokens"),
    )


def _arguments(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


def parse_converse_response(
    data: Any, *, model: str, response_id: str, created: int, json_tool: str | None
) -> ChatResult:
    """A Converse response body -> an OpenAI ``chat.completion`` and its usage."""
    if not isinstance(data, dict):
        raise BadGatewayError("Bedrock returned a response that is not a JSON object")
    output = data.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        # Not a Converse answer: often an error body ({"message": ...}) that a proxy sent with 200.
        # An empty completion would pass it off as a success.
        error = data.get("message") or data.get("Message")
        detail = f": {str(error)[:300]}" if error else ""
        raise BadGatewayError(f"Bedrock returned a response without output.message{detail}")
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    answer: str | None = None
    for block in message.get("content") or ():
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            if use.get("name") == json_tool and answer is None:
                answer = _arguments(use.get("input"))
                continue
            tool_calls.append(
                {
                    "id": use["toolUseId"],
                    "type": "function",
                    "function": {"name": use["name"], "arguments": _arguments(use.get("input"))},
                }
            )
        elif "reasoningContent" in block:
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if text:
                reasoning.append(text)
    finish = finish_reason(data.get("stopReason"))
    if finish == "tool_calls" and not tool_calls:
        finish = "stop"
    # With a response_format answer, text around the tool call would corrupt the JSON: drop it.
    content = answer if answer is not None else "".join(texts)
    result_message: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if reasoning:
        result_message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        result_message["tool_calls"] = tool_calls
    usage = usage_from(data.get("usage"))
    response: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": result_message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        response["usage"] = usage.to_openai()
    return ChatResult(response=response, usage=usage)


def stream_exception(headers: dict[str, Any], payload: bytes, provider: str) -> GatewayError:
    """The gateway error for an ``exception`` or ``error`` frame inside a ConverseStream."""
    if headers.get(":message-type") == "exception":
        kind = str(headers.get(":exception-type") or "unknownException")
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            body = {}
        message = str((body.get("message") if isinstance(body, dict) else None) or kind)
        status = _EXCEPTION_STATUS.get(kind, 502)
        error_type = kind[:1].upper() + kind[1:]  # the same spelling as x-amzn-ErrorType
        if status == 503:
            return ServiceUnavailableError(
                f"Bedrock: {message}", error_type=error_type, code="service_unavailable"
            )
        return upstream_status_error(status, message, provider=provider, error_type=error_type)
    code = headers.get(":error-code") or "unknown"
    message = headers.get(":error-message") or "the stream failed"
    return BadGatewayError(
        f"upstream '{provider}' stream error {code}: {message}", code="upstream_stream_error"
    )


class ConverseStreamTranslator(StreamTranslator):
    """ConverseStream events -> OpenAI chunks. One per stream.

    ``messageStart`` -> role chunk; text deltas -> ``content``; reasoning deltas ->
    ``reasoning_content``; a ``toolUse`` block start -> a ``tool_calls`` entry (its index is the
    ordinal of the tool blocks) and its input fragments -> ``arguments``; ``messageStop`` -> the
    finish chunk; ``metadata`` (which arrives after ``messageStop``) -> one usage chunk.
    """

    __slots__ = ("_blocks", "_created", "_id", "_json_tool", "_model", "_provider", "_stopped", "_tools")

    def __init__(
        self, *, model: str, response_id: str, created: int, json_tool: str | None, provider: str
    ) -> None:
        self._id = response_id
        self._model = model
        self._created = created
        self._json_tool = json_tool
        self._provider = provider
        self._blocks: dict[int, int] = {}
        """contentBlockIndex -> tool call index, or -1 for the response_format answer tool."""
        self._tools = 0
        self._stopped = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def feed(self, data: Any) -> list[dict[str, Any]]:
        headers, payload = data  # a Frame from EventStreamDecoder
        if headers.get(":message-type") != "event":
            raise stream_exception(headers, payload, self._provider)
        event_type = headers.get(":event-type")
        try:
            event = pydantic_core.from_json(payload)  # several times faster than json.loads on bytes
        except ValueError:
            raise BadGatewayError(f"Bedrock sent a {event_type} event that is not JSON") from None
        if event_type == "contentBlockDelta":
            delta = event.get("delta") or {}
            text = delta.get("text")
            if text is not None:
                return [self._chunk({"content": text})] if text else []
            tool = delta.get("toolUse")
            if tool is not None:
                return self._tool_input(event.get("contentBlockIndex"), tool.get("input") or "")
            reasoning = delta.get("reasoningContent")
            if reasoning is not None and reasoning.get("text"):
                return [self._chunk({"reasoning_content": reasoning["text"]})]
            return []
        if event_type == "contentBlockStart":
            start = (event.get("start") or {}).get("toolUse")
            return self._tool_start(event.get("contentBlockIndex"), start) if start else []
        if event_type == "messageStart":
            return [self._chunk({"role": event.get("role") or "assistant", "content": ""})]
        if event_type == "messageStop":
            self._stopped = True
            finish = finish_reason(event.get("stopReason"))
            if finish == "tool_calls" and not self._tools:
                finish = "stop"
            return [self._chunk({}, finish)]
        if event_type == "metadata":
            self.done = True  # the last event of a ConverseStream
            usage = usage_from(event.get("usage"))
            if usage is None:
                return []
            return [
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": usage.to_openai(),
                }
            ]
        return []  # contentBlockStop, and events this gateway does not know yet

    def _tool_start(self, block: Any, start: dict[str, Any]) -> list[dict[str, Any]]:
        if start.get("name") == self._json_tool and -1 not in self._blocks.values():
            self._blocks[block] = -1
            return []
        index = self._blocks[block] = self._tools
        self._tools += 1
        call = {
            "index": index,
            "id": start.get("toolUseId"),
            "type": "function",
            "function": {"name": start.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _tool_input(self, block: Any, fragment: str) -> list[dict[str, Any]]:
        if not fragment:
            return []
        index = self._blocks.get(block)
        if index == -1:
            return [self._chunk({"content": fragment})]
        if index is None:  # input for a block that never started: keep it as a new call
            index = self._blocks[block] = self._tools
            self._tools += 1
        return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})]

    def finish(self) -> list[dict[str, Any]]:
        if not self._stopped:
            raise BadGatewayError(
                "Bedrock ended the stream before messageStop", code="upstream_stream_incomplete"
            )
        return []
