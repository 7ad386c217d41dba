"""``GET`` and ``DELETE /v1/responses/{id}``: stored responses, read from the conversation store.

Handlers of ``routes.ENDPOINTS`` (the dispatcher checks the gateway key first): any valid gateway key
may read or delete a response whose id it knows (ids carry 192 random bits); a missing, expired or
deleted id is a 404 in OpenAI's envelope.
"""

from __future__ import annotations

from typing import Any

from ..asgi.types import Scope
from .store import Conversations

__all__ = ["StoredResponseRoutes"]


class StoredResponseRoutes:
    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    async def retrieve_response(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        stored = await self.conversations.load(params["id"])
        return stored.response

    async def delete_response(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        await self.conversations.delete(params["id"])
        return {"id": params["id"], "object": "response", "deleted": True}
