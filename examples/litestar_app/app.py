"""A small Litestar service with the gateway mounted at /llm through the Litestar plugin.

Run it:  python -m examples.litestar_app        (http://127.0.0.1:8001)
"""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, get

from rec_llm_gateway import Gateway
from rec_llm_gateway.integrations.litestar import GatewayPlugin

HERE = Path(__file__).parent

gateway = Gateway.from_file(HERE / "gateway.yaml")


@get("/")
async def index() -> dict[str, str]:
    return {"service": "litestar-demo", "llm": "/llm/v1/chat/completions"}


# The plugin mounts the gateway and opens/closes it with the app's startup and shutdown.
app = Litestar(route_handlers=[index], plugins=[GatewayPlugin(gateway, path="/llm")])
