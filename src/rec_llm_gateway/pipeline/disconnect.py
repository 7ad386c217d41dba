"""The disconnect watcher: while armed, a client that goes away cancels the request's task, so the
upstream request is closed at once instead of running to its end for nobody."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from ..asgi.request import ClientDisconnected
from ..asgi.types import Receive

__all__ = ["DisconnectWatch"]


class DisconnectWatch:
    """A context manager around the part of a request that waits on the upstream or the client.

    Inside the block a disconnect cancels the task wherever it waits; leaving the block by that
    cancellation raises ``ClientDisconnected`` instead. ``absorb`` turns a cancellation caught inside
    the block into a plain outcome (a stream that must still settle its accounts). The watcher is
    stopped exactly once (``stop`` is idempotent) before anything else is awaited, so the
    cancellation can never hit clean-up code. One extra task per request or stream: ~8 us (two tasks
    and ``asyncio.wait`` cost ~100 us).
    """

    __slots__ = ("_armed", "_fired", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("DisconnectWatch needs a running task")
        self._task: asyncio.Task[Any] = task
        self._armed = True
        self._fired = False
        self._watcher = asyncio.get_running_loop().create_task(_wait_for_disconnect(receive))
        # A flag rather than remove_done_callback: once the watcher is done its callbacks are already
        # scheduled, and disarming must still win if it happens before they run.
        self._watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Task[None]) -> None:
        if self._armed and not watcher.cancelled():
            self._fired = True
            self._task.cancel()

    def __enter__(self) -> DisconnectWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
        if isinstance(exc, asyncio.CancelledError) and self.absorb():
            raise ClientDisconnected from None
        # cancelled by someone else (server shutdown): let it through

    def stop(self) -> None:
        """Disarm and end the watcher (idempotent)."""
        self._armed = False
        self._watcher.cancel()

    def absorb(self) -> bool:
        """For a ``CancelledError`` caught in the block: ``True`` (and the task uncancelled) when the
        client's disconnect caused it, ``False`` when someone else cancelled (re-raise it then)."""
        if not self._fired:
            return False
        self._fired = False  # uncancel once per cancellation
        self._task.uncancel()
        return True


async def _wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (the request body has already been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
