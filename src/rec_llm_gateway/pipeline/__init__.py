"""The operation pipeline: one request's way through auth, limits, validation, hooks, routing,
attempts, pricing, usage and telemetry, written once (``handler.py``) and generic over operations;
a small module per operation (``chat.py``, ``embeddings.py``, ``completions.py``) holds only what
differs (``operation.py``)."""

from __future__ import annotations

from .chat import CHAT, ChatOperation
from .completions import COMPLETIONS, CompletionsOperation
from .embeddings import EMBEDDINGS, EmbeddingsOperation
from .handler import OperationHandler
from .operation import Operation

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "ChatOperation",
    "CompletionsOperation",
    "EmbeddingsOperation",
    "Operation",
    "OperationHandler",
]
