"""Conversation stores: memory, and the ones processes share: SQLite (a file) and Redis (a real
redis-server on loopback)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rec_llm_gateway.responses.shared_stores import RedisConversationStore, SQLiteConversationStore
from rec_llm_gateway.responses.store import ConversationStore, MemoryConversationStore

from ..state_support import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: Any, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    made: ConversationStore
    if request.param == "memory":
        made = MemoryConversationStore()
    elif request.param == "sqlite":
        made = SQLiteConversationStore(str(tmp_path / "state.db"))
    else:
        made = RedisConversationStore(request.getfixturevalue("redis_url"), key_prefix=f"t{time.time_ns()}:")
    yield made
    await made.aclose()


async def test_put_get_delete(store: ConversationStore) -> None:
    assert await store.get("a") is None
    await store.put("a", b"\x00one", 60)
    await store.put("b", b"two", 60)
    assert await store.get("a") == b"\x00one"
    await store.put("a", b"again", 60)
    assert await store.get("a") == b"again"
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None and await store.get("b") == b"two"


async def test_expired_entries_are_not_read(store: ConversationStore) -> None:
    await store.put("old", b"x", -1 if not isinstance(store, RedisConversationStore) else 0.001)
    if isinstance(store, RedisConversationStore):
        time.sleep(0.01)  # Redis expires on its own clock; a millisecond TTL is the least it takes
    assert await store.get("old") is None
    assert await store.delete("old") is False


async def test_two_sqlite_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    first, second = SQLiteConversationStore(path), SQLiteConversationStore(path)
    await first.put("k", b"v", 60)
    assert await second.get("k") == b"v"
    assert await second.delete("k")
    assert await first.get("k") is None
    await first.aclose()
    await second.aclose()
