"""``AdmissionPipeline``: the admissions of one event loop, sent to Redis in pipelines on one connection.

The admissions that arrive while a pipeline is out go together in the next one (each still its own
atomic script call, in order, so a request's buckets stay all-or-nothing and a limit stays exact).
Without this, each concurrent admission took a connection of its own: a burst of more than the
pool's 100 connections failed with ``MaxConnectionsError`` (and fell back to per-process counting),
and each paid a round trip and redis-py's per-command cost. A lone admission goes out at once, in
its caller's task (no task switch on the sequential path); when others queued behind it, a task
sends them so the caller is answered without waiting for theirs.

Pipelines go out one at a time, so one connection carries them all (``AdmissionConnection``): the
admission is the one store call on a request's path, and redis-py's client around a command (the
pool, the retry wrapper, a task per socket timeout) cost more than the round trip itself (measured
on loopback: 230-250 us a lone admission through the client, 140 us on the connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, ResponseError

from .base import Batch, StoreUnavailable
from .redis_scripts import ADMIT, ADMIT_SHA, WRITE

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

__all__ = ["AdmissionConnection", "AdmissionPipeline", "Command"]

Command = tuple[Any, ...]
_Entry = tuple[list[Any], "Batch | None", "asyncio.Future[Any]"]


class AdmissionConnection:
    """``run(commands)``: their replies in order (an error reply as its exception), in one round trip.

    The connection has no socket timeout of its own (redis-py wraps each send of a connection that
    has one in a task): the whole round trip is bounded by ``timeout`` instead. A round trip that
    fails or is cancelled part way closes the connection (redis-py does, so no reply is left unread
    to be taken for the next one's); the next round trip connects again.
    """

    def __init__(self, connection: AbstractConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        connection = self._connection
        replies: list[Any] = []
        async with asyncio.timeout(self._timeout):
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as error:  # the reply was read whole: the connection is in step
                    replies.append(error)
        return replies

    async def aclose(self) -> None:
        await self._connection.disconnect()


class AdmissionPipeline:
    """``admit(args, settled)``: the admission script's raw reply, ``settled`` written just before."""

    def __init__(
        self, run: Callable[[Sequence[Command]], Awaitable[list[Any]]], write: Callable[[Batch], Command]
    ) -> None:
        self._run = run
        self._write = write
        """The command that writes a batch (the ``WRITE`` script by SHA)."""
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

    async def _again(self, commands: list[Command], replies: list[Any]) -> list[Any]:
        """Redis lost the scripts (it restarted, or they were flushed): load them and run again what
        did not run, in one more round trip. A ``NOSCRIPT`` script never started, so this is still once."""
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        load: list[Command] = [("SCRIPT", "LOAD", ADMIT), ("SCRIPT", "LOAD", WRITE)]
        again = await self._run(load + [commands[index] for index in missing])
        for index, reply in zip(missing, again[len(load) :], strict=True):
            replies[index] = reply
        return replies

    async def _send(self, own: asyncio.Future[Any] | None) -> None:
        """One pipeline of everything queued; every caller in it is answered, whatever happens."""
        entries = [entry for entry in self._queued if not entry[2].done()]  # callers that gave up: skip
        self._queued = []
        if not entries:
            return
        commands: list[Command] = []
        spans: list[tuple[int, int]] = []
        for args, settled, _ in entries:
            first = len(commands)
            if settled:
                commands.append(self._write(settled))
            commands.append(("EVALSHA", ADMIT_SHA, 0, *args))
            spans.append((first, len(commands)))
        try:
            replies = await self._run(commands)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                replies = await self._again(commands, replies)
        except Exception as exc:
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
            if failed is not None:  # the ledger retries its settlements as they were (written once)
                future.set_exception(failed)
            else:
                future.set_result(replies[end - 1])
