"""ConverseStream events -> OpenAI ``chat.completion.chunk`` dicts.

On the per-event hot path: one pydantic-core JSON parse per event, then what arrived goes to a
``translate.Reply`` (which numbers tool calls by the order they start, turns the ``response_format``
tool into content and settles the finish reason) rendering through a ``ChunkWriter``.

    messageStart              -> the role chunk
    contentBlockStart toolUse -> a ``tool_calls`` entry; its input deltas -> ``arguments``
    contentBlockDelta         -> text: ``content``; reasoningContent: ``reasoning_content``
    contentBlockStop          -> a tool that sent no input gets "{}" (so its arguments parse)
    messageStop               -> the finish chunk
    metadata                  -> one usage chunk (it arrives after messageStop: the last event)
    exception / error frames  -> a GatewayError (sent to the client as the final SSE error event)
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

from ...errors import BadGatewayError
from ...translate import ChunkWriter, Reply
from ..base import StreamTranslator
from .errors import stream_exception
from .response import finish_reason, usage_from

__all__ = ["ConverseStreamTranslator"]


class ConverseStreamTranslator(StreamTranslator):
    """ConverseStream frames (``(headers, payload)`` from ``EventStreamDecoder``) -> OpenAI chunks.
    One per stream."""

    __slots__ = ("_provider", "_reply", "_stopped", "_text_event", "_writer", "done", "usage")

    def __init__(
        self, *, model: str, response_id: str, created: int, json_tool: str | None, provider: str
    ) -> None:
        self._writer = ChunkWriter(response_id, model, created)
        self._reply = Reply(self._writer, json_tool)
        self._text_event = self._writer.text_event  # bound once: it runs per event
        self._provider = provider
        self._stopped = False
        self.done = False
        self.usage = None

    def feed(self, data: Any) -> list[dict[str, Any]]:
        headers, payload = data  # a Frame from EventStreamDecoder
        if headers.get(":message-type") != "event":
            raise stream_exception(headers, payload, self._provider)
        event_type = headers.get(":event-type")
        try:
            event = from_json(payload)  # several times faster than json.loads on bytes
        except ValueError:
            raise BadGatewayError(f"Bedrock sent a {event_type} event that is not JSON") from None
        if event_type == "contentBlockDelta":
            delta = event.get("delta") or {}
            text = delta.get("text")
            if text is not None:
                return self._text_event(text) or self._text(text)
            if "toolUse" in delta:
                self._reply.tool_arguments(
                    event.get("contentBlockIndex"), (delta["toolUse"] or {}).get("input") or ""
                )
            elif "reasoningContent" in delta:
                self._reply.reasoning((delta["reasoningContent"] or {}).get("text") or "")
            return self._writer.take()
        reply = self._reply
        if event_type == "contentBlockStart":
            start = (event.get("start") or {}).get("toolUse")
            if start:
                reply.tool_call(event.get("contentBlockIndex"), start.get("toolUseId"), start.get("name"))
        elif event_type == "contentBlockStop":
            reply.tool_end(event.get("contentBlockIndex"))
        elif event_type == "messageStart":
            reply.begin()
        elif event_type == "messageStop":
            self._stopped = True
            reply.finish(finish_reason(event.get("stopReason")))
        elif event_type == "metadata":
            self.done = True  # the last event of a ConverseStream
            self.usage = usage_from(event.get("usage"))
            reply.add_usage(self.usage)
        # events this gateway does not know yet: nothing to say
        return self._writer.take()

    def _text(self, text: str) -> list[dict[str, Any]]:
        self._reply.text(text)
        return self._writer.take()

    def finish(self) -> list[dict[str, Any]]:
        if not self._stopped:
            raise BadGatewayError(
                "Bedrock ended the stream before messageStop", code="upstream_stream_incomplete"
            )
        return []
