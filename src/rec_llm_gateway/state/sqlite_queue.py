"""``TransactionQueue``: group commit on a SQLite file (admissions on the event loop's thread while
the file's lock is free: ``write_now``; the rest, and waits for the lock, on one worker thread).

Admissions (``write_now``) of one turn of the event loop run together on its thread, in one
transaction, when the lock is free; otherwise, and for every other operation, the worker thread
does the work. The worker thread takes the write lock (``BEGIN
IMMEDIATE``), then takes *everything queued by then* and runs it in that one transaction, each
operation inside its own savepoint (so one that fails is undone alone and the others still
commit), and answers each caller. A burst of 64 concurrent admissions is therefore a handful of
transactions, not 64 in a row: without grouping, the last of them waited behind 63 commits (and
63 trips of the lock between processes), past the admission timeout, and fell back to
per-process counting, which is exactly when limits must be exact. Reads run after the writes
queued with them, outside any transaction (WAL: they never wait for a writer).

A locked database (another process holds the write lock) is waited for ``busy_timeout`` per
attempt, a bounded number of attempts; then every operation waiting fails with
``StoreUnavailable`` and the gateway treats the store as unavailable.
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
ATTEMPTS: Final = 3
"""Attempts to take the write lock, each waiting up to ``timeout / ATTEMPTS``."""


class _Job:
    __slots__ = ("future", "loop", "work", "write")

    def __init__(
        self,
        work: Callable[[sqlite3.Connection], Any],
        write: bool,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | Future[Any],
    ) -> None:
        self.work = work
        self.write = write
        self.loop = loop
        """The caller's event loop; ``None`` for a blocking caller (a thread waiting on ``future``)."""
        self.future = future

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


class TransactionQueue:
    """Runs work on ``connect()``'s connection in one worker thread, writes grouped per transaction."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        connect_inline: Callable[[], sqlite3.Connection] | None = None,
    ) -> None:
        self._connect = connect
        self._connect_inline = connect_inline
        """A second connection, used on the event loop's thread, that never waits for the lock."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rec-llm-state")
        self._jobs: list[_Job] = []
        self._inline: list[_Job] = []
        self._lock = threading.Lock()
        self._inline_lock = threading.Lock()
        self._draining = False
        self.transactions = 0
        """Write transactions committed (grouping shows as fewer transactions than writes)."""

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` inside the next write transaction (atomic on its own: a savepoint)."""
        return await self._submit(work, write=True)  # type: ignore[no-any-return]

    async def write_now(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``write`` for the hot path (admissions): grouped with the writes of the same turn of the
        event loop and run on its thread while the file's lock is free. In the worker thread every
        statement waits for the GIL while the loop is busy (up to the 5 ms switch interval each,
        holding the file's lock meanwhile, which then times out other processes); here a group
        costs only SQLite's own time. When another process holds the lock, or the worker thread
        has work queued (so that order is kept), the group waits its turn in the worker thread."""
        if self._connect_inline is None:
            return await self.write(work)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            self._inline.append(_Job(work, True, loop, future))
            first = len(self._inline) == 1
        if first:
            loop.call_soon(self._run_inline)
        return await future  # type: ignore[no-any-return]

    def _run_inline(self) -> None:
        with self._lock:
            jobs, self._inline = self._inline, []
            busy = self._draining
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs:
            return
        if not busy and self._connect_inline is not None and self._inline_lock.acquire(blocking=False):
            try:
                db = self._connect_inline()
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                self._inline_lock.release()  # locked by another process (or not open yet)
            else:
                try:
                    self._commit(db, jobs, asyncio.get_running_loop())
                finally:
                    self._inline_lock.release()
                return
        for job in jobs:
            self._queue(job)

    async def read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._submit(work, write=False)  # type: ignore[no-any-return]

    def read_blocking(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``read`` for synchronous callers (``gateway.usage.get_all()``): waits in this thread."""
        future: Future[_T] = Future()
        self._queue(_Job(work, False, None, future))
        return future.result()

    async def _submit(self, work: Callable[[sqlite3.Connection], Any], *, write: bool) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue(_Job(work, write, loop, future))
        return await future

    def _queue(self, job: _Job) -> None:
        with self._lock:
            self._jobs.append(job)
            start = not self._draining
            self._draining = True
        if start:
            self._executor.submit(self._drain)

    def shutdown(self) -> None:
        """Stop the worker thread once the work queued so far has run."""
        self._executor.shutdown(wait=False)

    # -- the worker thread ---------------------------------------------------------------------

    def _take(self) -> list[_Job]:
        with self._lock:
            jobs, self._jobs = self._jobs, []
        return [job for job in jobs if not job.future.done()]  # callers that gave up: skip their work

    def _drain(self) -> None:
        try:
            self._drain_jobs()
        except BaseException:
            # A bug here must not leave the queue marked busy (every later operation would wait
            # for a thread that is gone): answer what is queued, let the next operation restart it.
            with self._lock:
                self._draining = False
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                job.answer(None, StoreUnavailable("sqlite: the store's worker thread failed"))
            raise

    def _drain_jobs(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._draining = False
                    return
                writes = any(job.write for job in self._jobs)
            try:
                db = self._connect()
                if writes:
                    _begin(db)
            except (sqlite3.Error, StoreUnavailable) as exc:
                failure = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(f"sqlite: {exc}")
                for job in self._take():
                    job.answer(None, failure)
                continue
            # Taken after the lock is held: everything that arrived while waiting for it joins in.
            jobs = self._take()
            if writes:
                self._commit(db, [job for job in jobs if job.write])
            for job in jobs:
                if not job.write:
                    try:
                        job.answer(job.work(db), None)
                    except sqlite3.Error as exc:
                        job.answer(None, StoreUnavailable(f"sqlite: {exc}"))
                    except Exception as exc:
                        job.answer(None, exc)

    def _commit(
        self, db: sqlite3.Connection, jobs: list[_Job], here: asyncio.AbstractEventLoop | None = None
    ) -> None:
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


def _begin(db: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, retried a bounded number of times while another process holds the lock."""
    for attempt in range(ATTEMPTS):
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if attempt + 1 == ATTEMPTS:
                raise StoreUnavailable(f"sqlite: {exc}") from None
            time.sleep(0.005 * (attempt + 1))
