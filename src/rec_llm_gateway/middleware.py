"""``GatewayMiddleware``: put the gateway in front of any ASGI app under a path prefix."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from .asgi import ASGIApp, Message, Receive, Scope, Send
from .gateway import Gateway

__all__ = ["GatewayMiddleware"]

logger = logging.getLogger("rec_llm_gateway")


class GatewayMiddleware:
    """Serve the gateway under ``path_prefix``; everything else goes to ``app`` untouched.

    Example::

        app = GatewayMiddleware(app, gateway=Gateway.from_file("gateway.yaml"), path_prefix="/llm")

    The wrapped app's lifespan messages pass through unchanged; the middleware only watches them to
    open the gateway at startup and close it at shutdown.

    Args:
        app: any ASGI application (ASGI 2 style apps are adapted).
        gateway: the ``Gateway`` to serve.
        path_prefix: where the gateway lives, e.g. ``/llm`` (``/llm/v1/chat/completions``).
    """

    def __init__(self, app: ASGIApp, *, gateway: Gateway, path_prefix: str = "/llm") -> None:
        from asgiref.compatibility import guarantee_single_callable  # (~5 ms: only for this class)

        self.app: ASGIApp = guarantee_single_callable(app)  # type: ignore[no-untyped-call]
        self.gateway = gateway
        prefix = "/" + path_prefix.strip("/")
        self.prefix = "" if prefix == "/" else prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            root = scope.get("root_path") or ""
            path: str = scope.get("path") or ""
            # Starlette-style: the path may still carry the root path it is mounted under.
            relative = path[len(root) :] if root and path.startswith(root) else path
            if relative == self.prefix or relative.startswith(self.prefix + "/") or not self.prefix:
                await self.gateway(
                    {**scope, "root_path": root + self.prefix, "path": root + relative}, receive, send
                )
                return
        elif kind == "lifespan":
            await self.app(scope, self._watch_lifespan(receive), send)
            return
        await self.app(scope, receive, send)

    def _watch_lifespan(self, receive: Receive) -> Receive:
        gateway = self.gateway

        async def watched() -> Message:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                await gateway.start()
            elif message["type"] == "lifespan.shutdown":
                with contextlib.suppress(Exception):
                    await gateway.aclose()
            return message  # type: ignore[no-any-return]

        return watched
