"""Reading an upstream error body, the part every provider's error mapping shares.

A provider knows where its vendor puts the message and the error type; what to do with a body that
is not JSON, or JSON without a message, is the same everywhere: say which upstream answered which
status, quoting the start of a non-JSON body (error pages, proxies) so the client sees the cause.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

__all__ = ["ErrorBody"]


class ErrorBody:
    """An upstream error response's body: ``data`` is the parsed JSON (``None`` when it is not JSON;
    a one-element list, as Google's array-form streams send it, is unwrapped)."""

    __slots__ = ("_body", "_provider", "_status", "data")

    def __init__(self, status: int, body: bytes, provider: str) -> None:
        self._status = status
        self._body = body
        self._provider = provider
        try:
            data = pydantic_core.from_json(body) if body else None
        except ValueError:
            data = None
        if isinstance(data, list) and data:
            data = data[0]
        self.data: Any = data

    def field(self, *path: str) -> Any:
        """``data[path[0]][path[1]]...``, or ``None`` where a step is missing or not an object."""
        value = self.data
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def message(self, found: Any = None) -> str:
        """``found`` (the vendor's message) when there is one, else what the body itself says."""
        if found:
            return str(found)
        text = self._body[:300].decode("utf-8", "replace").strip() if self.data is None else ""
        return f"upstream '{self._provider}' returned HTTP {self._status}" + (f": {text}" if text else "")
