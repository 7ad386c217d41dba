"""What a gateway opens per event loop: the shared upstream HTTP client (on the aiohttp transport
when available), background tasks, and the requests in flight that shutdown waits for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import httpx

from .config import HttpConfig
from .providers.egress import upstream_client

__all__ = ["Runtime", "upstream_transport"]

logger = logging.getLogger("rec_llm_gateway")


class Runtime:
    """What the gateway opens per event loop: the shared upstream HTTP client and background tasks."""

    def __init__(self, config: HttpConfig) -> None:
        self.transport = upstream_transport(config)
        self.http = upstream_client(self.transport, trust_env=config.trust_env)
        self.tasks: set[asyncio.Task[Any]] = set()
        """Background tasks (health checks): cancelled on close."""
        self.requests: set[asyncio.Task[Any]] = set()
        """Chat requests in flight: given time to finish on close."""
        self.closing = False

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a background task until ``aclose``."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self, grace: float) -> None:
        """Let requests in flight finish (up to ``grace`` seconds), then cancel the rest and close."""
        self.closing = True
        if self.requests:
            _, pending = await asyncio.wait(set(self.requests), timeout=grace)
            if pending:
                logger.warning(
                    "%d request(s) still running after %gs of shutdown grace: cancelled", len(pending), grace
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=5)
        tasks = set(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self.http.aclose()


def upstream_transport(config: HttpConfig) -> httpx.AsyncBaseTransport:
    """The upstream transport: aiohttp's when available (see aiohttp_transport.py), else httpx's own."""
    if config.transport != "httpx":
        try:
            from .aiohttp_transport import AiohttpTransport
        except ImportError:
            pass  # "auto" without aiohttp ("aiohttp" without it was refused by the config)
        else:
            return AiohttpTransport(
                max_connections=config.max_connections,
                keepalive_expiry=config.keepalive_expiry,
                trust_env=config.trust_env,
            )
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_keepalive_connections,
        keepalive_expiry=config.keepalive_expiry,
    )
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=config.trust_env)
