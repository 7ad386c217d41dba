"""The ``responses:`` section: how ``/v1/responses`` keeps conversations and treats built-in tools."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ResponsesConfig"]

THIRTY_DAYS = 30 * 24 * 3600.0


class ResponsesConfig(BaseModel):
    """``/v1/responses`` settings.

    ``retention_seconds``: how long a stored response (and the conversation before it) can be read
    back or continued with ``previous_response_id`` (OpenAI keeps them 30 days, the default).
    ``builtin_tools``: what to do with built-in tools (``web_search``, ``file_search``, ...) for an
    upstream that cannot run them: ``drop`` leaves them out (named in the
    ``x-rec-llm-dropped-tools`` response header and a debug log), ``reject`` answers 400.
    ``max_stored``: how many responses the memory store keeps (the oldest go first); the SQLite and
    Redis stores of ``state.url`` keep everything until it expires.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    retention_seconds: float = Field(THIRTY_DAYS, gt=0)
    builtin_tools: Literal["drop", "reject"] = "drop"
    max_stored: int = Field(10_000, gt=0)
