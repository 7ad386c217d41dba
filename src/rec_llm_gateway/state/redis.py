"""``redis://`` / ``rediss://``: state in Redis (or Valkey), shared by every process on every machine.

redis-py's asyncio client, one per event loop. Admissions and settlements are Lua scripts
(``redis_scripts.py``) called by SHA (loaded again when Redis answers ``NOSCRIPT``); an admission
is one round trip on a connection of its own (``redis_batch.py``), a flush one call of the
``WRITE`` script (each batch applied once). Keys are built inside the scripts from
``state.key_prefix``, so Redis Cluster is not supported (one primary, with replicas if you like).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from redis.asyncio import ConnectionPool, Redis

from ..usage import UsageRecord
from .base import WINDOW_SECONDS, Admission, Batch, BucketTake, Refusal, headroom_rows
from .redis_batch import AdmissionConnection, AdmissionPipeline, Command
from .redis_scripts import WRITE, WRITE_SHA

if TYPE_CHECKING:
    from redis import Redis as SyncRedis

__all__ = ["RedisStore"]

_SEP: Final = "\x1f"
_COUNTS: Final = ("calls", "errors", "estimated_calls", "prompt_tokens", "completion_tokens", "total_tokens")


def _limit(value: int | None) -> int:
    return -1 if value is None else value


class _Client:
    """One event loop's connections (a connection belongs to the loop that opened it): the client's
    pool for flushes and reads, and one connection of its own for admissions (``AdmissionPipeline``)."""

    __slots__ = ("admissions", "connection", "redis", "write")

    def __init__(self, store: RedisStore) -> None:
        timeout = store.timeout
        self.redis: Redis = Redis.from_url(
            store.url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        self.write = self.redis.register_script(WRITE)  # EVALSHA, loading the script if Redis lacks it
        own = ConnectionPool.from_url(
            store.url, socket_timeout=None, socket_connect_timeout=timeout, decode_responses=True
        )
        connection = own.make_connection()  # type: ignore[no-untyped-call]  # (untyped in redis-py)
        self.connection = AdmissionConnection(connection, timeout)
        self.admissions = AdmissionPipeline(self.connection.run, store.write_command)


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )
        self._sync: SyncRedis | None = None
        self._sync_lock = threading.Lock()

    def _client(self) -> _Client:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = _Client(self)
        return client

    async def admit(self, admission: Admission, settled: Batch | None = None) -> Refusal | None:
        args: list[Any] = [
            self.prefix,
            admission.id,
            repr(admission.now),
            admission.ttl,
            len(admission.buckets),
        ]
        for bucket in admission.buckets:
            args += [
                bucket.name,
                _limit(bucket.rpm),
                _limit(bucket.tpm),
                _limit(bucket.concurrent),
                bucket.tokens,
            ]
        budget = admission.budget
        args += [budget.name, budget.month, repr(budget.limit), repr(budget.amount)] if budget else [""]
        # The same round trip: this process's settlements, then the admission (in a pipeline shared
        # with the admissions that arrive meanwhile).
        reply = await self._client().admissions.admit(args, settled)
        if not reply:
            return None
        limit, name, wait = reply[0], reply[1], float(reply[2])
        if len(reply) > 3:  # a budget: spent (or held), in flight
            return Refusal(name, limit, wait, float(reply[3]), in_flight=reply[4] == "1")
        return Refusal(name, limit, wait)

    async def write(self, batch: Batch) -> None:
        await self._client().write(keys=[], args=[self.prefix, _guard(batch), _payload(batch)])

    def write_command(self, batch: Batch) -> Command:
        """The command that writes ``batch`` ahead of an admission, in its round trip."""
        return ("EVALSHA", WRITE_SHA, 0, self.prefix, _guard(batch), _payload(batch))

    async def usage(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        redis = self._client().redis
        members: set[str] = await redis.smembers(f"{self.prefix}udays")  # type: ignore[assignment]
        days = _days(members, start, end)
        pipe = redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(f"{self.prefix}u:{day}")
        return _records(days, await pipe.execute())

    def usage_blocking(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        """On a synchronous client kept for the purpose (its pool is thread-safe; an asyncio client
        belongs to one event loop, and the caller may have none, or be blocking the one it has)."""
        with self._sync_lock:
            if self._sync is None:
                from redis import Redis as SyncRedis

                self._sync = SyncRedis.from_url(
                    self.url,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                    decode_responses=True,
                )
        members: set[str] = self._sync.smembers(f"{self.prefix}udays")  # type: ignore[assignment]
        days = _days(members, start, end)
        pipe = self._sync.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(f"{self.prefix}u:{day}")
        return _records(days, pipe.execute())

    async def spent(self, name: str, month: str) -> float:
        value = await self._client().redis.get(f"{self.prefix}b:{name}:{month}")
        return float(value) if value else 0.0

    async def signals(self) -> dict[str, dict[str, Any]]:
        raw: dict[str, str] = await self._client().redis.hgetall(f"{self.prefix}sig")  # type: ignore[assignment]
        return {name: json.loads(value) for name, value in raw.items()}

    async def headroom(
        self, buckets: Sequence[BucketTake], now: float
    ) -> dict[str, dict[str, dict[str, int]]]:
        prefix, cutoff = self.prefix, now - WINDOW_SECONDS
        pipe = self._client().redis.pipeline(transaction=True)  # one snapshot
        for bucket in buckets:
            pipe.zcount(f"{prefix}r:{bucket.name}", f"({cutoff!r}", "+inf")
            pipe.zrangebyscore(f"{prefix}t:{bucket.name}", f"({cutoff!r}", "+inf")
            pipe.hgetall(f"{prefix}tk:{bucket.name}")
            pipe.zcount(f"{prefix}c:{bucket.name}", f"({now!r}", "+inf")
        replies = await pipe.execute()
        rows = {}
        for index, bucket in enumerate(buckets):
            requests, live, tokens, slots = replies[index * 4 : index * 4 + 4]
            used = sum(int(float(tokens.get(id, 0))) for id in live)
            rows[bucket.name] = headroom_rows(bucket, requests, used, slots)
        return rows

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.connection.aclose()
            await client.redis.aclose()
        with self._sync_lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None


def _days(members: set[str], start: dt.date | None, end: dt.date | None) -> list[str]:
    first, last = (start or dt.date.min).isoformat(), (end or dt.date.max).isoformat()
    return sorted(day for day in members if first <= day <= last)


def _records(days: list[str], hashes: list[dict[str, str]]) -> list[UsageRecord]:
    """The usage hashes of ``days`` (field: provider, model, key, operation, counter) as records."""
    records: dict[tuple[str, str, str, str, str], UsageRecord] = {}
    for day, fields in zip(days, hashes, strict=True):
        for field, value in fields.items():
            provider, model, key, operation, name = field.split(_SEP)
            record = records.get((day, provider, model, key, operation))
            if record is None:
                record = records[(day, provider, model, key, operation)] = UsageRecord(
                    date=dt.date.fromisoformat(day),
                    provider=provider,
                    model=model,
                    gateway_key_id=key or None,
                    operation=operation,
                )
            if name == "latency_ms":
                record.total_latency_ms = float(value)
            elif name == "cost_usd":
                record.cost_usd = float(value)
            else:
                setattr(record, name, int(value))
    return list(records.values())


def _payload(batch: Batch) -> str:
    """``batch`` as the ``WRITE`` script reads it (amounts as ``repr`` strings: exact in Lua)."""
    settlements = [
        [
            settlement.id,
            "" if settlement.tokens is None else str(settlement.tokens),
            [bucket.name for bucket in settlement.buckets],
            *(
                (settlement.budget.name, settlement.budget.month, repr(settlement.cost))
                if settlement.budget
                else ("", "", "0")
            ),
        ]
        for settlement in batch.settlements
    ]
    usage = []
    for record in batch.usage:
        field = _SEP.join((record.provider, record.model, record.gateway_key_id or "", record.operation))
        sums = [["latency_ms", repr(record.total_latency_ms)]]
        if record.cost_usd is not None:
            sums.append(["cost_usd", repr(record.cost_usd)])
        counts = [[name, getattr(record, name)] for name in _COUNTS]
        usage.append([record.date.isoformat(), field + _SEP, counts, sums])
    return json.dumps(
        {
            "s": settlements,
            "b": [[name, month, repr(amount)] for (name, month), amount in batch.spend.items()],
            "u": usage,
            "g": [[name, json.dumps(value)] for name, value in batch.signals.items()],
            "w": batch.written,
        }
    )


def _guard(batch: Batch) -> str:
    """The id ``WRITE`` applies once, or ``""`` for a batch that is the same written twice."""
    return batch.id if batch.adds else ""
