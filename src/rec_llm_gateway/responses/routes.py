"""``GET`` and ``DELETE /v1/responses/{id}``: stored responses, read from the conversation store.

Any valid gateway key may read or delete a response whose id it knows (ids carry 192 random bits);
a missing, expired or deleted id is a 404 in OpenAI's envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic_core

from ..admin import allow
from ..asgi import Send, send_json
from ..errors import NotFoundError
from .store import Conversations

if TYPE_CHECKING:
    from ..asgi import GatewayAuth

__all__ = ["StoredResponseRoutes"]

PREFIXES = ("/v1/responses/", "/responses/")


class StoredResponseRoutes:
    def __init__(self, auth: GatewayAuth, conversations: Conversations) -> None:
        self.auth = auth
        self.conversations = conversations

    async def __call__(
        self, method: str, path: str, headers: dict[str, str], send: Send, extra: list[tuple[bytes, bytes]]
    ) -> None:
        response_id = path.split("/responses/", 1)[1]
        if not response_id or "/" in response_id:
            raise NotFoundError(f"Unknown route: {path[:200]}")
        if method not in ("GET", "DELETE"):
            allow(method, "GET, DELETE")  # raises the 405 naming both
        self.auth.authenticate(headers)
        if method == "GET":
            stored = await self.conversations.load(response_id)
            await send_json(send, 200, pydantic_core.to_json(stored.response), extra)
            return
        await self.conversations.delete(response_id)
        body = {"id": response_id, "object": "response", "deleted": True}
        await send_json(send, 200, pydantic_core.to_json(body), extra)
