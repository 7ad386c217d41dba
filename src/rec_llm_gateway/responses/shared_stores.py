"""Conversation stores that several gateway processes share: SQLite (one machine) and Redis (many).

They live where ``state.url`` points, beside the limits and usage of the shared state store, but keep
to their own table or keys: a stored response is a blob read by id, nothing like a rate bucket.
Expiry uses the wall clock (processes compare it); expired rows are deleted now and then by writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

__all__ = ["RedisConversationStore", "SQLiteConversationStore"]

_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value BLOB, expires REAL)"
_SWEEP_EVERY: Final = 256  # writes between deletions of expired rows


class SQLiteConversationStore:
    """One SQLite file (WAL), driven from one worker thread so the event loop never waits on it."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rec-llm-responses")
        self._db: sqlite3.Connection | None = None
        self._writes = 0

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a committed write survives the process being killed
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        db = self._connect()
        now = time.time()
        db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", (key, value, now + ttl))
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            db.execute("DELETE FROM responses WHERE expires <= ?", (now,))

    def _get(self, key: str) -> bytes | None:
        row = (
            self._connect()
            .execute("SELECT value FROM responses WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return bytes(row[0]) if row is not None else None

    def _delete(self, key: str) -> bool:
        cursor = self._connect().execute(
            "DELETE FROM responses WHERE key = ? AND expires > ?", (key, time.time())
        )
        return cursor.rowcount > 0

    async def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._run(self._put, key, value, ttl_seconds)

    async def get(self, key: str) -> bytes | None:
        result: bytes | None = await self._run(self._get, key)
        return result

    async def delete(self, key: str) -> bool:
        return bool(await self._run(self._delete, key))

    async def aclose(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._run(close)


class RedisConversationStore:
    """``SET key value PX ttl`` / ``GET`` / ``DEL`` under ``key_prefix``; one client per event loop
    (redis-py's connections belong to the loop that opened them)."""

    def __init__(self, url: str, key_prefix: str = "rec_llm:", timeout: float = 5.0) -> None:
        self.url = url
        self.prefix = key_prefix
        self.timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        from redis.asyncio import Redis  # the state store's extra: checked when the config loads

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
        return client

    async def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._client().set(self.prefix + key, value, px=max(1, int(ttl_seconds * 1000)))

    async def get(self, key: str) -> bytes | None:
        value = await self._client().get(self.prefix + key)
        return bytes(value) if value is not None else None

    async def delete(self, key: str) -> bool:
        return bool(await self._client().delete(self.prefix + key))

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()
