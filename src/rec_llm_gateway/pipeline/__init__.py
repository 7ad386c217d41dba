"""The operation pipeline: one request's way through auth, limits, validation, hooks, routing,
attempts, pricing, usage and telemetry, written once (``handler.py``) and generic over operations;
a small module per operation (``chat.py``, ``embeddings.py``, ``completions.py``) holds only what
differs (``operation.py``). Operations other than chat are imported when their route is first used
(``routes.Endpoint.operation``), not here."""

from __future__ import annotations

from .chat import CHAT, ChatOperation
from .handler import OperationHandler
from .operation import Operation

__all__ = [
    "CHAT",
    "ChatOperation",
    "Operation",
    "OperationHandler",
]
