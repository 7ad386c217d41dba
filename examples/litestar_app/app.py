"""A small Litestar service with the gateway mounted at /llm through the Litestar plugin.

Run it:  python -m examples.litestar_app        (http://127.0.0.1:8001)

``HouseRules`` shows a custom hook plugin: it caps ``max_tokens``, refuses a topic with a 403 in
OpenAI's error envelope, and logs the cost of every call.
"""

from __future__ import annotations

import logging
from pathlib import Path

from litestar import Litestar, get

from rec_llm_gateway import CostEvent, Gateway, RequestContext, RequestRejected, hookimpl
from rec_llm_gateway.integrations.litestar import GatewayPlugin
from rec_llm_gateway.schema import ChatCompletionRequest, content_text

HERE = Path(__file__).parent
logger = logging.getLogger("litestar_app")


class HouseRules:
    """Policy for this service's LLM traffic."""

    max_tokens = 1024

    @hookimpl
    def pre_request(self, request: ChatCompletionRequest, context: RequestContext) -> None:
        if any("forbidden topic" in content_text(message.content) for message in request.messages):
            raise RequestRejected("This service does not discuss that topic.", code="topic_not_allowed")
        if request.max_tokens is None or request.max_tokens > self.max_tokens:
            request.max_tokens = self.max_tokens
        context.metadata["tenant"] = context.headers.get("x-tenant", "default")

    @hookimpl
    async def on_cost(self, event: CostEvent) -> None:
        logger.info("%s %s:%s cost $%s", event.request_id, event.provider, event.model, event.cost_usd)


gateway = Gateway.from_file(HERE / "gateway.yaml", plugins=[HouseRules()])


@get("/")
async def index() -> dict[str, str]:
    return {"service": "litestar-demo", "llm": "/llm/v1/chat/completions"}


# The plugin mounts the gateway and opens/closes it with the app's startup and shutdown.
app = Litestar(route_handlers=[index], plugins=[GatewayPlugin(gateway, path="/llm")])
