"""Litestar: mount the gateway and tie it to the app's startup and shutdown.

Example::

    from litestar import Litestar
    from rec_llm_gateway import Gateway
    from rec_llm_gateway.integrations.litestar import GatewayPlugin

    gateway = Gateway.from_file("gateway.yaml")
    app = Litestar(route_handlers=[...], plugins=[GatewayPlugin(gateway, path="/llm")])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    from litestar.handlers import asgi
    from litestar.plugins import InitPlugin
    from litestar.types import Receive, Scope, Send  # resolved at runtime by Litestar's signature model
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Litestar integration needs Litestar: pip install 'rec-llm-gateway[litestar]'"
    ) from exc

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

    from ..gateway import Gateway

__all__ = ["GatewayPlugin"]


class GatewayPlugin(InitPlugin):
    """Mounts ``gateway`` at ``path`` and opens/closes it with the Litestar app.

    Args:
        gateway: the ``Gateway`` to serve.
        path: the mount path (default ``/llm``).
    """

    def __init__(self, gateway: Gateway, path: str = "/llm") -> None:
        self.gateway = gateway
        self.path = "/" + path.strip("/")

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        gateway = self.gateway

        async def llm_gateway(scope: Scope, receive: Receive, send: Send) -> None:
            await gateway(scope, receive, send)  # type: ignore[arg-type]

        app_config.route_handlers.append(asgi(self.path, is_mount=True, copy_scope=True)(llm_gateway))
        app_config.on_startup.append(gateway.start)
        app_config.on_shutdown.append(gateway.aclose)
        return app_config
