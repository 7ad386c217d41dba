"""``TransactionQueue``: group commit on a SQLite file, writes on the event loop's thread.

Writes (admissions, flushes) queued in one turn of the event loop run together in one transaction
on the loop's thread, each inside its own savepoint (one that fails is undone alone and the others
still commit), and each caller is answered. A burst of 64 concurrent admissions is one transaction,
not 64 in a row (the last of them used to wait behind 63 commits, past the admission timeout).

The write lock is taken with ``BEGIN IMMEDIATE`` on a connection that never waits for it; while
another process holds it, the queued writes try again every millisecond (and the writes that
arrive meanwhile join them) until ``timeout``, then fail with ``StoreUnavailable`` and the gateway
treats the store as unavailable. Why not wait in a worker thread, as SQLite's busy handler does:
under load every statement a worker thread runs waits for the GIL (up to the 5 ms switch
interval) while it holds the file's lock, and the busy handler's sleeps grow to 50-100 ms, so
two busy processes starved each other past the timeout (measured: two workers at 2,300 requests
per second fell back to per-process counting one to three times in ten seconds). On the loop's
thread a transaction holds the lock only for SQLite's own time.

Reads, and the WAL checkpoints (an fsync, kept off the loop's thread), run on one worker thread
(WAL: readers never wait for the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from .base import StoreUnavailable

__all__ = ["TransactionQueue"]

_T = TypeVar("_T")
_POLL_SECONDS: Final = 0.001
"""How often queued writes try the lock again while another process holds it."""
_CHECKPOINT_SECONDS: Final = 1.0
_CHECKPOINT_TRANSACTIONS: Final = 200
"""A checkpoint after this many transactions, or this many seconds, whichever comes first: the
WAL is written from its start again only after one (it grew without bound under sustained writes)."""


class _Job:
    __slots__ = ("deadline", "future", "loop", "work")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | Future[Any],
        deadline: float = 0.0,
    ) -> None:
        self.work = work
        self.loop = loop
        """The caller's event loop; ``None`` for a blocking caller (a thread waiting on ``future``)."""
        self.future = future
        self.deadline = deadline
        """For a write: when it stops waiting for the lock (``time.monotonic()``)."""

    def answer(
        self, result: Any, error: BaseException | None, here: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Hand the outcome to the caller (a caller that gave up is not answered); ``here``: the
        event loop running this code, whose own callers are answered directly."""
        if self.loop is None or self.loop is here:
            _resolve(self.future, result, error)
            return
        with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(_resolve, self.future, result, error)


def _resolve(future: asyncio.Future[Any] | Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled (the caller's timeout)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _locked(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class TransactionQueue:
    """Writes on ``connect_writer()``'s connection (the event loop's thread), reads on
    ``connect_reader()``'s (one worker thread)."""

    def __init__(
        self,
        connect_writer: Callable[[], sqlite3.Connection],
        connect_reader: Callable[[], sqlite3.Connection],
        timeout: float,
    ) -> None:
        self._connect_writer = connect_writer
        self._connect_reader = connect_reader
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rec-llm-state")
        self._writes: list[_Job] = []
        self._waiting = False
        """Queued writes wait for the lock (a retry is scheduled: new writes just join them)."""
        self._lock = threading.Lock()
        self._writer_lock = threading.Lock()
        """The write connection, used by one event loop at a time (a gateway may serve several)."""
        self._checkpointed = (time.monotonic(), 0)
        """When the last checkpoint was asked for, and ``transactions`` then."""
        self.transactions = 0
        """Write transactions committed (grouping shows as fewer transactions than writes)."""

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` inside the next write transaction (atomic on its own: a savepoint)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._writes.append(_Job(work, loop, future, time.monotonic() + self._timeout))
            first = len(self._writes) == 1 and not self._waiting
        if first:
            loop.call_soon(self._run_writes)
        return await future  # type: ignore[no-any-return]

    def _run_writes(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            jobs, self._writes = self._writes, []
            self._waiting = False
        jobs = [job for job in jobs if not job.future.done()]  # callers that gave up: skip their work
        if not jobs:
            return
        if not self._writer_lock.acquire(blocking=False):  # another event loop is writing now
            self._wait(jobs, loop, None)
            return
        try:
            db = self._connect_writer()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._writer_lock.release()
            if _locked(exc):
                self._wait(jobs, loop, exc)
            else:
                for job in jobs:
                    job.answer(None, StoreUnavailable(f"sqlite: {exc}"), loop)
            return
        try:
            self._commit(db, jobs, loop)
        finally:
            self._writer_lock.release()
        at, count = self._checkpointed
        now = time.monotonic()
        if self.transactions - count >= _CHECKPOINT_TRANSACTIONS or now - at >= _CHECKPOINT_SECONDS:
            self._checkpointed = (now, self.transactions)
            self._executor.submit(self._checkpoint)

    def _wait(self, jobs: list[_Job], loop: asyncio.AbstractEventLoop, exc: sqlite3.Error | None) -> None:
        """Try again shortly, without the writes that waited for the lock as long as they may."""
        now = time.monotonic()
        for job in jobs:
            if job.deadline <= now:
                job.answer(None, StoreUnavailable(f"sqlite: {exc or 'database is locked'}"), loop)
        with self._lock:
            self._writes[:0] = [job for job in jobs if job.deadline > now]
            if self._writes and not self._waiting:
                self._waiting = True
                loop.call_later(_POLL_SECONDS, self._run_writes)

    def _commit(self, db: sqlite3.Connection, jobs: list[_Job], here: asyncio.AbstractEventLoop) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        alone = len(jobs) == 1  # the transaction is its savepoint (two statements fewer)
        try:
            for job in jobs:
                if not alone:
                    db.execute("SAVEPOINT job")
                try:
                    result = job.work(db)
                except Exception as exc:
                    db.execute("ROLLBACK" if alone else "ROLLBACK TO job")
                    error = StoreUnavailable(f"sqlite: {exc}") if isinstance(exc, sqlite3.Error) else exc
                    outcomes.append((None, error))
                else:
                    outcomes.append((result, None))
                if not alone:
                    db.execute("RELEASE job")
            if db.in_transaction:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            failure = StoreUnavailable(f"sqlite: {exc}")
            for job in jobs:
                job.answer(None, failure, here)
            return
        self.transactions += 1
        for job, (result, failed) in zip(jobs, outcomes, strict=True):
            job.answer(result, failed, here)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database, so that the next transaction writes it from its start
        (``RESTART``: holds the write lock meanwhile, one call of SQLite without the GIL; writers
        wait for it as for another process)."""
        with contextlib.suppress(sqlite3.Error):  # busy: the next one copies it
            self._connect_reader().execute("PRAGMA wal_checkpoint(RESTART)")

    # -- reads, on the worker thread ------------------------------------------------------------

    async def read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue(_Job(work, loop, future))
        return await future  # type: ignore[no-any-return]

    def read_blocking(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``read`` for synchronous callers (``gateway.usage.get_all()``): waits in this thread."""
        future: Future[_T] = Future()
        self._queue(_Job(work, None, future))
        return future.result()

    def _queue(self, job: _Job) -> None:
        self._executor.submit(self._read, job)

    def _read(self, job: _Job) -> None:
        if job.future.done():  # the caller gave up
            return
        try:
            job.answer(job.work(self._connect_reader()), None)
        except sqlite3.Error as exc:
            job.answer(None, StoreUnavailable(f"sqlite: {exc}"))
        except Exception as exc:
            job.answer(None, exc)

    def shutdown(self) -> None:
        """Stop the worker thread once the reads queued so far have run."""
        self._executor.shutdown(wait=False)
