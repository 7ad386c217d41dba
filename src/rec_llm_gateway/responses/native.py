"""Native pass-through to upstreams that serve the Responses API themselves (OpenAI, Azure OpenAI).

The body goes as the client sent it (unknown fields included) with the provider's model name; when
the gateway holds the conversation (``previous_response_id`` found in its store) the history is sent
inline instead of the id, so the upstream needs no state of its own and a conversation can move
between upstreams. The answer's ``usage`` is read for pricing, limits and telemetry; stream events
pass through as they come.
"""

from __future__ import annotations

from typing import Any, Final

from ..errors import BadGatewayError
from ..providers.base import ChatResult, StreamTranslator, UpstreamCall, parse_json, stream_error
from .objects import as_dict, usage_from_responses
from .wire import ResponsesRequest

__all__ = ["TERMINAL_EVENTS", "NativeEvents", "native_payload", "parse_native_response"]

TERMINAL_EVENTS: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})


def native_payload(request: ResponsesRequest, model: str, stream: bool) -> dict[str, Any]:
    """The upstream body; ``request`` already carries the whole history when the gateway held it."""
    payload = request.to_payload()
    payload["model"] = model
    if stream:
        payload["stream"] = True
    else:
        payload.pop("stream", None)
        payload.pop("stream_options", None)
    return payload


def parse_native_response(data: Any, call: UpstreamCall, provider: str) -> ChatResult:
    """Check a Response body and read its usage."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        if isinstance(data, dict) and "error" in data and data.get("error"):
            raise stream_error(data["error"])
        raise BadGatewayError(f"upstream '{provider}' returned something that is not a Response")
    if data.get("status") == "failed":
        raise stream_error(data.get("error") or {"message": "the upstream response failed"})
    call.response_model = data.get("model") if isinstance(data.get("model"), str) else None
    return ChatResult(response=data, usage=usage_from_responses(data.get("usage")))


class NativeEvents(StreamTranslator):
    """Responses stream events pass through as dicts; an ``error`` event or ``response.failed`` is an
    upstream failure (the gateway reports it to the client in the Responses shape)."""

    def feed(self, data: Any) -> list[dict[str, Any]]:
        if data == b"[DONE]":  # not sent by OpenAI's Responses API, but tolerated
            self.done = True
            return []
        event = parse_json(data)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise BadGatewayError("the upstream sent a stream event that is not a Responses event")
        kind = event["type"]
        if kind == "error":
            raise stream_error(event)
        if kind == "response.failed":
            response = as_dict(event.get("response"))
            raise stream_error(response.get("error") or {"message": "the upstream response failed"})
        if kind in TERMINAL_EVENTS:
            self.done = True
            self.usage = usage_from_responses(as_dict(event.get("response")).get("usage"))
        return [event]
