"""``streamGenerateContent?alt=sse`` events -> OpenAI ``chat.completion.chunk`` dicts.

Each event is a whole response object holding the *delta* of every candidate; what it says goes to a
``translate.Reply`` and out through a ``ChunkWriter``, one delta per candidate and event (reasoning,
text and whole tool calls together, as Gemini sends them). ``usageMetadata`` repeats on every event:
the last one wins and goes out once, in its own chunk, when the stream ends. A prompt Gemini blocked
is one ``refusal`` and a ``content_filter`` finish.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from ...errors import BadGatewayError
from ...translate import ChunkWriter, Reply
from ..base import StreamTranslator, UpstreamCall
from .errors import google_stream_error
from .response import (
    ToolCallIds,
    blocked_message,
    completion_id,
    map_finish_reason,
    read_logprobs,
    say,
    usage_from,
)

__all__ = ["GeminiStreamTranslator"]


class GeminiStreamTranslator(StreamTranslator):
    """One per stream. ``feed`` takes an SSE event's data bytes; ``feed_event`` the parsed object
    (also usable for the elements of the JSON-array form of ``streamGenerateContent``)."""

    def __init__(self, call: UpstreamCall, provider: str, *, single_call: bool = False) -> None:
        self._call = call
        self._provider = provider
        self._limit = 1 if single_call else None
        self._writer = ChunkWriter(model=call.model)
        self._reply = Reply(self._writer)
        self._ids: ToolCallIds | None = None
        self._meta: Any = None

    def feed(self, data: Any) -> list[dict[str, Any]]:
        try:
            event = pydantic_core.from_json(data)  # about 3x faster than json.loads on these events
        except ValueError:
            raise BadGatewayError("the upstream sent a stream event that is not valid JSON") from None
        try:
            return self.feed_event(event)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # a shape the translation does not expect: the upstream's fault, not a gateway bug
            raise BadGatewayError(
                f"upstream '{self._provider}' sent a stream event the gateway cannot read "
                f"({type(exc).__name__})"
            ) from None

    def feed_event(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise BadGatewayError("the upstream sent a stream event that is not a JSON object")
        if "error" in event:
            raise google_stream_error(event["error"], self._provider)
        reply = self._reply
        ids = self._ids or self._start(event)
        meta = event.get("usageMetadata")
        if meta is not None:
            self._meta = meta
        candidates = event.get("candidates")
        if not candidates:
            refusal = blocked_message(event.get("promptFeedback"))
            if refusal is not None and not reply.begun():
                reply.refusal(refusal)
                reply.finish("content_filter")
            return self._writer.take()  # else an event with nothing but usage metadata
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index", position)
            reply.begin(index)
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if parts and say(reply, index, parts, ids, self._limit):
                logprobs = candidate.get("logprobsResult")
                if logprobs is not None:
                    reply.logprobs(read_logprobs(logprobs), index)
            reason = candidate.get("finishReason")
            if reason:
                reply.finish(map_finish_reason(reason, reply.tool_calls(index) > 0), index)
        return self._writer.take()

    def finish(self) -> list[dict[str, Any]]:
        if self._ids is None:
            return []
        self.usage = usage_from(self._meta)
        self._reply.add_usage(self.usage)
        return self._writer.take()

    def _start(self, event: dict[str, Any]) -> ToolCallIds:
        response_id = event.get("responseId")
        model = event.get("modelVersion")
        if isinstance(model, str) and model:
            self._call.response_model = model
        self._reply.identify(completion_id(response_id), model if isinstance(model, str) else None)
        self._ids = ToolCallIds(response_id)
        return self._ids
