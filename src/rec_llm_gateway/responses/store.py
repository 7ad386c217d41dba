"""Stored responses: what ``GET /v1/responses/{id}`` reads and ``previous_response_id`` rebuilds from.

Each stored response keeps the whole conversation that led to it (the history plus that turn's input
items) beside the response itself, so continuing a conversation is one read, on any process that
shares the store, and an expired id can never leave a conversation silently shortened: it is a 404.

``ConversationStore`` is the small key-value interface (put with a time to live, get, delete); the
memory implementation is here, SQLite and Redis ones in ``shared_stores.py``; ``open_conversations``
picks the one ``state.url`` names, so processes that share limits and usage share conversations.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pydantic_core

from ..errors import NotFoundError, ServiceUnavailableError, scrub_secrets

if TYPE_CHECKING:
    from ..state.settings import StateConfig
    from .settings import ResponsesConfig

__all__ = [
    "ConversationStore",
    "Conversations",
    "MemoryConversationStore",
    "StoredResponse",
    "open_conversations",
]

logger = logging.getLogger("rec_llm_gateway.responses")

_T = TypeVar("_T")


class ConversationStore(Protocol):
    """Bytes by key, each with a time to live. Implementations must be safe to share between event
    loops of one process."""

    async def put(self, key: str, value: bytes, ttl_seconds: float) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryConversationStore:
    """This process only; the oldest entries go first once ``max_entries`` are held."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    async def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    async def delete(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.pop(key, None)
        return entry is not None and entry[0] > self._clock()

    async def aclose(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class StoredResponse:
    response: dict[str, Any]
    """The Response object as the client got it (without ``x_rec_llm``)."""
    input: list[dict[str, Any]]
    """Every input item of the conversation up to this response: earlier turns' input and output,
    then this turn's input. ``instructions`` are not among them (they do not carry over)."""

    def history(self) -> list[dict[str, Any]]:
        """What a next turn that names this response continues from."""
        return [*self.input, *self.response.get("output", ())]


class Conversations:
    """Stored responses over a ``ConversationStore``, kept for ``retention_seconds``.

    A shared store that fails or does not answer within ``timeout`` seconds: a response that cannot
    be saved is still delivered (a warning is logged; continuing it later is a 404), a conversation
    that cannot be read is a 503 ``state_unavailable`` (never an answer without its history)."""

    def __init__(self, store: ConversationStore, retention_seconds: float, timeout: float = 5.0) -> None:
        self.store = store
        self.retention_seconds = retention_seconds
        self.timeout = timeout

    async def _call(self, operation: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except Exception as exc:  # any store failure (or timeout) means "unavailable"
            reason = scrub_secrets(f"{type(exc).__name__}: {exc}")[:300]
            raise ServiceUnavailableError(
                f"The conversation store is unavailable ({reason}).", code="state_unavailable"
            ) from None

    async def save(self, response: dict[str, Any], input_items: list[dict[str, Any]]) -> None:
        record = {"response": {k: v for k, v in response.items() if k != "x_rec_llm"}, "input": input_items}
        value = pydantic_core.to_json(record)
        try:
            await self._call(self.store.put(_key(response["id"]), value, self.retention_seconds))
        except ServiceUnavailableError as exc:
            logger.warning("response %s was not stored: %s", str(response["id"])[:64], exc.message)

    async def find(self, response_id: str) -> StoredResponse | None:
        raw = await self._call(self.store.get(_key(response_id)))
        if raw is None:
            return None
        record = pydantic_core.from_json(raw)
        return StoredResponse(response=record["response"], input=record["input"])

    async def load(self, response_id: str, *, param: str | None = None) -> StoredResponse:
        """The stored response, or a 404 in OpenAI's shape (``param`` names the field that named it)."""
        stored = await self.find(response_id)
        if stored is None:
            raise not_found(response_id, param)
        return stored

    async def delete(self, response_id: str) -> None:
        if not await self._call(self.store.delete(_key(response_id))):
            raise not_found(response_id, None)

    async def aclose(self) -> None:
        await self.store.aclose()


def open_conversations(state: StateConfig, settings: ResponsesConfig) -> Conversations:
    """Stored responses where ``state.url`` keeps the gateway's shared state: in this process
    (``memory://``), a table of the SQLite file, or keys of the Redis server under its prefix."""
    store: ConversationStore
    if state.scheme == "sqlite":
        from ..state.settings import sqlite_path
        from .shared_stores import SQLiteConversationStore

        store = SQLiteConversationStore(sqlite_path(state.url.get_secret_value()))
    elif state.scheme in ("redis", "rediss"):
        from .shared_stores import RedisConversationStore

        store = RedisConversationStore(state.url.get_secret_value(), state.key_prefix)
    else:
        store = MemoryConversationStore(settings.max_stored)
    # A conversation is larger than a rate bucket: give the store more than state.timeout_seconds.
    return Conversations(store, settings.retention_seconds, timeout=max(2.0, state.timeout_seconds))


def not_found(response_id: str, param: str | None) -> NotFoundError:
    shown = response_id[:128]
    if param == "previous_response_id":
        return NotFoundError(
            f"Previous response with id '{shown}' not found.",
            param=param,
            code="previous_response_not_found",
        )
    return NotFoundError(f"Response with id '{shown}' not found.", param=param)


def _key(response_id: str) -> str:
    return f"response:{response_id}"
