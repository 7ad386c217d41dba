"""JSON-lines audit log: one line per request, success or error.

Example::

    from rec_llm_gateway.plugins.audit import AuditLogPlugin

    gateway = Gateway(config, plugins=[AuditLogPlugin("audit.jsonl")])
    # or in config: plugins: [{path: "rec_llm_gateway.plugins.audit:AuditLogPlugin",
    #                          options: {path: "audit.jsonl"}}]

Each line has: ``timestamp``, ``request_id``, ``gateway_key_id``, ``requested_model``, ``provider``,
``model``, ``stream``, ``outcome`` (success / error / rejected / client_disconnected), ``status``,
``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``cost_usd``, ``latency_ms``,
``attempts`` and, for failures, ``error`` (code and message). Message content is never written
unless ``include_content=True`` (then ``messages`` and ``response`` too).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from typing import IO, Any

from ..errors import GatewayError
from ..hooks import RequestContext, hookimpl
from ..responses.wire import ResponsesRequest
from ..schema import ChatCompletion, ChatCompletionRequest

__all__ = ["AuditLogPlugin"]


class AuditLogPlugin:
    """Writes one JSON line per request.

    Args:
        path: a file to append to (``"-"`` or ``None`` for standard output), or an open text stream.
        include_content: also write the request messages and the response message (off by default).
    """

    def __init__(
        self, path: str | os.PathLike[str] | IO[str] | None = None, *, include_content: bool = False
    ) -> None:
        if path is None or path == "-":
            self._stream: IO[str] = sys.stdout
            self._owned = False
        elif isinstance(path, str | os.PathLike):
            self._stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the plugin
            self._owned = True
        else:
            self._stream = path
            self._owned = False
        self._include_content = include_content
        self._lock = threading.Lock()  # several event loops may share one plugin

    @hookimpl
    def pre_request(self, request: ChatCompletionRequest | ResponsesRequest, context: RequestContext) -> None:
        if self._include_content:
            context.metadata["audit_messages"] = (
                request.input_items()  # /v1/responses: its input items
                if isinstance(request, ResponsesRequest)
                else [message.model_dump(mode="json", exclude_unset=True) for message in request.messages]
            )

    @hookimpl
    def post_response(self, response: ChatCompletion, context: RequestContext) -> None:
        line = self._line(context)
        if self._include_content:
            line["messages"] = context.metadata.get("audit_messages")
            choices = getattr(response, "choices", None)
            line["response"] = (
                [choice.get("message") for choice in choices]
                if choices is not None
                else getattr(response, "output", None)  # /v1/responses: its output items
            )
        self._write(line)

    @hookimpl
    def on_error(self, error: GatewayError, context: RequestContext) -> None:
        line = self._line(context)
        line["error"] = {"code": error.code, "type": error.error_type, "message": error.message}
        if self._include_content:
            line["messages"] = context.metadata.get("audit_messages")
        self._write(line)

    @staticmethod
    def _line(context: RequestContext) -> dict[str, Any]:
        usage = context.usage
        return {
            "timestamp": dt.datetime.fromtimestamp(context.started_at, dt.UTC).isoformat(),
            "request_id": context.request_id,
            "gateway_key_id": context.gateway_key_id,
            "requested_model": context.requested_model,
            "provider": context.provider,
            "model": context.model,
            "stream": context.stream,
            "outcome": context.outcome,
            "status": context.status_code,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "cost_usd": context.cost_usd,
            "latency_ms": context.latency_ms,
            "attempts": context.attempts,
        }

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
