"""``AdmissionPipeline``: the admissions of one event loop, sent to Redis in pipelines.

The admissions that arrive while a pipeline is out go together in the next one (each still its own
atomic script call, in order, so a request's buckets stay all-or-nothing and a limit stays exact).
Without this, each concurrent admission took a connection of its own: a burst of more than the
pool's 100 connections failed with ``MaxConnectionsError`` (and fell back to per-process counting),
and each paid a round trip and redis-py's per-command cost. A lone admission goes out at once, in
its caller's task (no task switch on the sequential path); when others queued behind it, a task
sends them so the caller is answered without waiting for theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from .base import Batch, StoreUnavailable
from .redis_scripts import ADMIT_SHA

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline
    from redis.commands.core import AsyncScript

__all__ = ["AdmissionPipeline"]

_Entry = tuple[list[Any], "Batch | None", "asyncio.Future[Any]"]


class AdmissionPipeline:
    """``admit(args, settled)``: the admission script's raw reply, ``settled`` written just before."""

    def __init__(
        self,
        redis: Redis,
        lone: AsyncScript,
        load: Callable[..., Awaitable[None]],
        settle: Callable[[Pipeline, Batch], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._lone = lone
        """An admission alone, with nothing to settle: the script object (one ``EVALSHA``)."""
        self._load = load
        """``load()`` the scripts before a pipeline (once); ``load(reload=True)`` after ``NOSCRIPT``."""
        self._settle = settle
        self._queued: list[_Entry] = []
        self._sending = False
        self._task: asyncio.Task[None] | None = None

    async def admit(self, args: list[Any], settled: Batch | None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((args, settled, future))
        if not self._sending:
            self._sending = True
            try:
                await self._send(own=future)
            finally:
                if self._queued:  # they arrived while this pipeline was out
                    self._task = asyncio.get_running_loop().create_task(self._drain())
                else:
                    self._sending = False
        return await future

    async def _drain(self) -> None:
        try:
            while self._queued:
                await self._send(own=None)
        finally:
            self._sending = False
            self._task = None
            for _, _, future in self._queued:  # only when cancelled (the loop is closing)
                if not future.done():
                    future.set_exception(StoreUnavailable("redis: the admission sender stopped"))
            self._queued = []

    async def _again(self, commands: list[tuple[Any, ...]], replies: list[Any]) -> list[Any]:
        """Redis lost the scripts (restarted; its client retried on a new connection): load them and
        run again what did not run. A ``NOSCRIPT`` script never started, so this is still once."""
        await self._load(reload=True)
        await self._load()
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        pipe = self._redis.pipeline(transaction=False)
        for index in missing:
            pipe.execute_command(*commands[index])
        for index, reply in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
            replies[index] = reply
        return replies

    async def _send(self, own: asyncio.Future[Any] | None) -> None:
        """One pipeline of everything queued; every caller in it is answered, whatever happens."""
        entries = [entry for entry in self._queued if not entry[2].done()]  # callers that gave up: skip
        self._queued = []
        if not entries:
            return
        spans: list[tuple[int, int]] = []
        try:
            if len(entries) == 1 and not entries[0][1]:
                replies = [await self._lone(keys=[], args=entries[0][0])]
                spans.append((0, 1))
            else:
                await self._load()
                pipe = self._redis.pipeline(transaction=False)
                for args, settled, _ in entries:
                    first = len(pipe)
                    if settled:
                        await self._settle(pipe, settled)
                    pipe.evalsha(ADMIT_SHA, 0, *args)
                    spans.append((first, len(pipe)))
                commands = [command for command, _ in pipe.command_stack]
                replies = await pipe.execute(raise_on_error=False)
                if any(isinstance(reply, NoScriptError) for reply in replies):
                    replies = await self._again(commands, replies)
        except Exception as exc:
            await self._load(reload=True)  # maybe Redis restarted: it lost the scripts
            for _, _, future in entries:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled: the others still get an answer
            for _, _, future in entries:
                if future is own:
                    future.cancel()
                elif not future.done():
                    future.set_exception(StoreUnavailable("redis: the admission was cancelled"))
            raise
        for (_, _, future), (first, end) in zip(entries, spans, strict=True):
            if future.done():
                continue
            failed = next((reply for reply in replies[first:end] if isinstance(reply, Exception)), None)
            if failed is not None:  # its settlements are put back by the ledger and written later
                future.set_exception(failed)
            else:
                future.set_result(replies[end - 1])
