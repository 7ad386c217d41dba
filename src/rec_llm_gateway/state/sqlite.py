"""``sqlite:///path``: state in one SQLite file, shared by every worker process on the machine.

The standard library's ``sqlite3`` (``sqlite_queue.py``): writes grouped per turn of the event
loop and run on its thread, one transaction per group; reads on one worker thread. WAL journal:
readers never wait for the writer, and a committed transaction survives the process being killed.
``BEGIN IMMEDIATE`` takes the write lock up front, so two workers writing at once queue on the
lock instead of failing to upgrade it; a lock held by others past ``timeout_seconds`` fails the
writes waiting for it, and the gateway treats the store as unavailable.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ..usage import UsageRecord
from .base import WINDOW_SECONDS, Admission, Batch, BucketTake, Refusal, headroom_rows
from .memory import budget_refusal
from .sqlite_queue import TransactionQueue

__all__ = ["SQLiteStore"]

_WRITTEN_SECONDS: Final = 86_400
"""How long the id of a written batch is kept when its writer never confirmed it."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS requests (bucket TEXT, id TEXT, at REAL, PRIMARY KEY (bucket, id));
CREATE INDEX IF NOT EXISTS requests_at ON requests (bucket, at);
CREATE TABLE IF NOT EXISTS tokens (bucket TEXT, id TEXT, at REAL, tokens INTEGER, PRIMARY KEY (bucket, id));
CREATE INDEX IF NOT EXISTS tokens_at ON tokens (bucket, at);
CREATE TABLE IF NOT EXISTS counts (bucket TEXT PRIMARY KEY, requests INTEGER, tokens INTEGER);
CREATE TABLE IF NOT EXISTS slots (bucket TEXT, id TEXT, expires REAL, PRIMARY KEY (bucket, id));
CREATE TABLE IF NOT EXISTS budgets (name TEXT, month TEXT, spent REAL, PRIMARY KEY (name, month));
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, name TEXT, month TEXT, amount REAL, expires REAL);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT, provider TEXT, model TEXT, key TEXT, operation TEXT, calls INTEGER, errors INTEGER,
    prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER, cost_usd REAL,
    latency_ms REAL, estimated_calls INTEGER, PRIMARY KEY (day, provider, model, key, operation));
CREATE TABLE IF NOT EXISTS signals (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS written (id TEXT PRIMARY KEY, at REAL);
CREATE INDEX IF NOT EXISTS written_at ON written (at);
"""
_ADD_USAGE: Final = """
INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, provider, model, key, operation) DO UPDATE SET
    calls = calls + excluded.calls, errors = errors + excluded.errors,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens,
    total_tokens = total_tokens + excluded.total_tokens,
    cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd
                    ELSE coalesce(cost_usd, 0) + excluded.cost_usd END,
    latency_ms = latency_ms + excluded.latency_ms,
    estimated_calls = estimated_calls + excluded.estimated_calls
"""
_COUNT: Final = """
INSERT INTO counts VALUES (?, ?, ?) ON CONFLICT (bucket) DO UPDATE SET
    requests = requests + excluded.requests, tokens = tokens + excluded.tokens
"""
_ADD_SPEND: Final = """
INSERT INTO budgets VALUES (?, ?, ?) ON CONFLICT (name, month) DO UPDATE SET spent = spent + excluded.spent
"""


class SQLiteStore:
    shared = True

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._queue = TransactionQueue(self._connect_writer, self._connect_reader, timeout)

    def _open(self, timeout: float) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; fsync per checkpoint
            db.executescript(_SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _connect_writer(self) -> sqlite3.Connection:
        """The connection writes use on the event loop's thread: it never waits for the lock, and
        leaves checkpoints (an fsync) to the worker thread."""
        if self._writer is None:
            db = self._open(timeout=0)
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._writer = db
        return self._writer

    def _connect_reader(self) -> sqlite3.Connection:
        """The worker thread's connection (reads and checkpoints)."""
        if self._reader is None:
            self._reader = self._open(timeout=self.timeout)
        return self._reader

    @property
    def transactions(self) -> int:
        """Write transactions committed so far (concurrent operations share one)."""
        return self._queue.transactions

    # -- operations -----------------------------------------------------------------------------

    async def admit(self, admission: Admission, settled: Batch | None = None) -> Refusal | None:
        def work(db: sqlite3.Connection) -> Refusal | None:
            if settled:
                _write(db, settled)
            return _admit(db, admission)

        return await self._queue.write(work)

    async def write(self, batch: Batch) -> None:
        await self._queue.write(lambda db: _write(db, batch))

    async def usage(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        return await self._queue.read(lambda db: _usage(db, start, end))

    def usage_blocking(self, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
        return self._queue.read_blocking(lambda db: _usage(db, start, end))

    async def spent(self, name: str, month: str) -> float:
        def read(db: sqlite3.Connection) -> float:
            row = db.execute("SELECT spent FROM budgets WHERE name = ? AND month = ?", (name, month))
            found = row.fetchone()
            return float(found[0]) if found else 0.0

        return await self._queue.read(read)

    async def signals(self) -> dict[str, dict[str, Any]]:
        def read(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            return {name: json.loads(value) for name, value in db.execute("SELECT * FROM signals")}

        return await self._queue.read(read)

    async def headroom(
        self, buckets: Sequence[BucketTake], now: float
    ) -> dict[str, dict[str, dict[str, int]]]:
        return await self._queue.read(
            lambda db: {bucket.name: _headroom(db, bucket, now) for bucket in buckets}
        )

    async def aclose(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            for connection in (self._writer, self._reader):
                if connection is not None:
                    connection.close()
            self._writer = self._reader = None

        if self._reader is not None or self._writer is not None:
            await self._queue.read(close)
        self._queue.shutdown()


def _usage(db: sqlite3.Connection, start: dt.date | None, end: dt.date | None) -> list[UsageRecord]:
    rows = db.execute(
        "SELECT * FROM usage WHERE day >= ? AND day <= ?",
        ((start or dt.date.min).isoformat(), (end or dt.date.max).isoformat()),
    )
    return [_record(row) for row in rows]


def _headroom(db: sqlite3.Connection, bucket: BucketTake, now: float) -> dict[str, dict[str, int]]:
    """Read from the logs themselves (expired entries are only deleted by admissions)."""
    name, cutoff = bucket.name, now - WINDOW_SECONDS
    (requests,) = db.execute(
        "SELECT count(*) FROM requests WHERE bucket = ? AND at > ?", (name, cutoff)
    ).fetchone()
    (tokens,) = db.execute(
        "SELECT coalesce(sum(tokens), 0) FROM tokens WHERE bucket = ? AND at > ?", (name, cutoff)
    ).fetchone()
    (slots,) = db.execute(
        "SELECT count(*) FROM slots WHERE bucket = ? AND expires > ?", (name, now)
    ).fetchone()
    return headroom_rows(bucket, requests, tokens, slots)


def _admit(db: sqlite3.Connection, admission: Admission) -> Refusal | None:
    now = admission.now
    take = admission.budget
    if take is not None:
        db.execute("DELETE FROM reservations WHERE expires <= ?", (now,))
        row = db.execute("SELECT spent FROM budgets WHERE name = ? AND month = ?", (take.name, take.month))
        spent = (row.fetchone() or (0.0,))[0]
        row = db.execute(
            "SELECT coalesce(sum(amount), 0) FROM reservations WHERE name = ? AND month = ?",
            (take.name, take.month),
        )
        refusal = budget_refusal(take, spent, row.fetchone()[0])
        if refusal is not None:
            return refusal
    for bucket in admission.buckets:
        refusal = _bucket_refusal(db, bucket, now)
        if refusal is not None:
            return refusal
    for bucket in admission.buckets:
        if bucket.rpm is not None:
            db.execute("INSERT INTO requests VALUES (?, ?, ?)", (bucket.name, admission.id, now))
        if bucket.tpm is not None:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)", (bucket.name, admission.id, now, bucket.tokens)
            )
        if bucket.rpm is not None or bucket.tpm is not None:
            db.execute(_COUNT, (bucket.name, int(bucket.rpm is not None), bucket.tokens if bucket.tpm else 0))
        if bucket.concurrent is not None:
            db.execute("INSERT INTO slots VALUES (?, ?, ?)", (bucket.name, admission.id, now + admission.ttl))
    if take is not None:
        db.execute(
            "INSERT INTO reservations VALUES (?, ?, ?, ?, ?)",
            (admission.id, take.name, take.month, take.amount, now + admission.ttl),
        )
    return None


def _bucket_refusal(db: sqlite3.Connection, bucket: BucketTake, now: float) -> Refusal | None:
    cutoff = now - WINDOW_SECONDS
    name = bucket.name
    if bucket.concurrent is not None:
        db.execute("DELETE FROM slots WHERE bucket = ? AND expires <= ?", (name, now))
        (used,) = db.execute("SELECT count(*) FROM slots WHERE bucket = ?", (name,)).fetchone()
        if used >= bucket.concurrent:
            return Refusal(name, "concurrent_requests", 1.0)
    if bucket.rpm is None and bucket.tpm is None:
        return None
    # The window's sums are kept in `counts` as entries come and go: counting the log on every
    # admission would cost time in proportion to the requests of the last minute.
    expired = db.execute("DELETE FROM requests WHERE bucket = ? AND at <= ?", (name, cutoff)).rowcount
    gone = sum(
        row[0]
        for row in db.execute(
            "DELETE FROM tokens WHERE bucket = ? AND at <= ? RETURNING tokens", (name, cutoff)
        )
    )
    if expired > 0 or gone:
        db.execute(_COUNT, (name, -max(expired, 0), -gone))
    requests, tokens = db.execute(
        "SELECT requests, tokens FROM counts WHERE bucket = ?", (name,)
    ).fetchone() or (0, 0)
    if bucket.rpm is not None:
        used = requests
        if used >= bucket.rpm:
            (oldest,) = db.execute(
                "SELECT at FROM requests WHERE bucket = ? ORDER BY at LIMIT 1 OFFSET ?",
                (name, used - bucket.rpm),
            ).fetchone()
            return Refusal(name, "requests_per_minute", oldest + WINDOW_SECONDS - now)
    if bucket.tpm is not None:
        used = tokens
        if used + bucket.tokens > bucket.tpm:
            return Refusal(name, "tokens_per_minute", _token_wait(db, bucket, used, now))
    return None


def _token_wait(db: sqlite3.Connection, bucket: BucketTake, used: int, now: float) -> float:
    assert bucket.tpm is not None
    if bucket.tokens > bucket.tpm:
        return WINDOW_SECONDS  # never fits
    excess = used + bucket.tokens - bucket.tpm
    for at, amount in db.execute(
        "SELECT at, tokens FROM tokens WHERE bucket = ? ORDER BY at", (bucket.name,)
    ):
        excess -= amount
        if excess <= 0:
            return max(0.0, float(at) + WINDOW_SECONDS - now)
    return WINDOW_SECONDS


def _write(db: sqlite3.Connection, batch: Batch) -> None:
    if batch.written:
        db.executemany("DELETE FROM written WHERE id = ?", [(done,) for done in batch.written])
    if batch.adds:
        now = time.time()
        if not db.execute("INSERT OR IGNORE INTO written VALUES (?, ?)", (batch.id, now)).rowcount:
            return  # written before: its first try committed and answered too late
        # A process that died between a write and its confirmation leaves its id: kept a day.
        db.execute("DELETE FROM written WHERE at < ?", (now - _WRITTEN_SECONDS,))
    for settlement in batch.settlements:
        for bucket in settlement.buckets:  # an admission may be settled in parts (deployment, key)
            db.execute("DELETE FROM slots WHERE bucket = ? AND id = ?", (bucket.name, settlement.id))
            if settlement.tokens is not None and bucket.tpm is not None:
                row = db.execute(
                    "SELECT tokens FROM tokens WHERE bucket = ? AND id = ?", (bucket.name, settlement.id)
                ).fetchone()
                if row is not None:  # still in the window
                    db.execute(
                        "UPDATE tokens SET tokens = ? WHERE bucket = ? AND id = ?",
                        (settlement.tokens, bucket.name, settlement.id),
                    )
                    db.execute(_COUNT, (bucket.name, 0, settlement.tokens - row[0]))
        take = settlement.budget
        if take is not None:
            db.execute("DELETE FROM reservations WHERE id = ?", (settlement.id,))
            if settlement.cost:
                db.execute(_ADD_SPEND, (take.name, take.month, settlement.cost))
    for (name, month), amount in batch.spend.items():
        db.execute(_ADD_SPEND, (name, month, amount))
    for record in batch.usage:
        db.execute(
            _ADD_USAGE,
            (
                record.date.isoformat(),
                record.provider,
                record.model,
                record.gateway_key_id or "",
                record.operation,
                record.calls,
                record.errors,
                record.prompt_tokens,
                record.completion_tokens,
                record.total_tokens,
                record.cost_usd,
                record.total_latency_ms,
                record.estimated_calls,
            ),
        )
    for name, value in batch.signals.items():
        db.execute("INSERT OR REPLACE INTO signals VALUES (?, ?)", (name, json.dumps(value)))


def _record(row: tuple[Any, ...]) -> UsageRecord:
    (
        day,
        provider,
        model,
        key,
        operation,
        calls,
        errors,
        prompt,
        completion,
        total,
        cost,
        latency,
        estimated,
    ) = row
    return UsageRecord(
        date=dt.date.fromisoformat(day),
        provider=provider,
        model=model,
        gateway_key_id=key or None,
        operation=operation,
        calls=calls,
        errors=errors,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cost_usd=cost,
        total_latency_ms=latency,
        estimated_calls=estimated,
    )
