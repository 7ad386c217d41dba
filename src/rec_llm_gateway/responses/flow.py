"""One Responses request against one provider: native or translated, and the conversation kept.

Per attempt (so a failover from OpenAI to Anthropic translates for Anthropic):

- the history of ``previous_response_id`` is read from the store once per request (a 404 in
  OpenAI's shape when it is missing or expired);
- an upstream that speaks the Responses API (``speaks_responses``) gets the request with the history
  inline; any other gets a chat request (``to_chat.py``) and its answer is turned back into a
  Response (``objects.py``) or into stream events (``events.py``);
- with ``store`` (the default) the response and its conversation are saved before the client sees
  the end of it, so that a next turn sent at once to another process finds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..errors import UpstreamTruncatedError
from ..providers.base import ChatResult, Provider, UpstreamCall
from ..translate import Reply
from ..translate.openai_chunks import read_chunk
from .events import EventWriter
from .native import TERMINAL_EVENTS
from .objects import new_id, response_from_completion, skeleton
from .store import Conversations
from .to_chat import BuiltinToolPolicy, to_chat_request
from .wire import ResponsesRequest

__all__ = ["ResponsesFlow", "speaks_responses"]


def speaks_responses(provider: Provider) -> bool:
    """Whether ``provider`` serves the Responses API itself (OpenAI, Azure; see ``responses_api``)."""
    return bool(getattr(provider, "speaks_responses", False))


class ResponsesFlow:
    """Built once per gateway; per-request state lives on the request (``ResponsesRequest.state``)."""

    def __init__(self, conversations: Conversations, builtin_tools: BuiltinToolPolicy) -> None:
        self.conversations = conversations
        self.builtin_tools = builtin_tools

    async def history(self, request: ResponsesRequest) -> list[dict[str, Any]] | None:
        """The conversation before this turn (``None``: there is none). An id the gateway does not
        hold is a 404 whatever the upstream: a native one would otherwise continue a conversation
        the gateway deleted, or answer without the history the client expects."""
        state = request.state
        if request.previous_response_id is None:
            return None
        if state.history is None:
            stored = await self.conversations.load(request.previous_response_id, param="previous_response_id")
            state.history = stored.history()
        return state.history

    def _prepare(self, provider: Provider, call: UpstreamCall, history: list[dict[str, Any]] | None) -> None:
        """Point ``call`` at what ``provider`` is sent: the Responses request or a chat request."""
        request: ResponsesRequest = call.request  # type: ignore[assignment]
        if speaks_responses(provider):
            call.request = request.with_history(history)  # type: ignore[assignment]
            return
        translation = to_chat_request(
            request, history or (), builtin_tools=self.builtin_tools, provider=provider.name
        )
        request.state.dropped_tools = translation.dropped_tools
        call.request = translation.request

    async def _save(self, request: ResponsesRequest, response: dict[str, Any]) -> None:
        if request.stores and response.get("id"):
            await self.conversations.save(response, [*(request.state.history or ()), *request.input_items()])

    # -- complete answers -------------------------------------------------------------------------

    async def complete(self, provider: Provider, call: UpstreamCall) -> ChatResult:
        request: ResponsesRequest = call.request  # type: ignore[assignment]
        native = speaks_responses(provider)
        history = await self.history(request)
        self._prepare(provider, call, history)
        result = await provider.complete(call)
        if native:
            response = result.response
            response["previous_response_id"] = request.previous_response_id
        else:
            base = skeleton(request, new_id("resp"), call.model)
            response = response_from_completion(result.response, base, result.usage)
        await self._save(request, response)
        return ChatResult(response=response, usage=result.usage)

    # -- streams ----------------------------------------------------------------------------------

    async def stream(self, provider: Provider, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        """Responses stream events (dicts); the terminal one comes after the response is saved."""
        request: ResponsesRequest = call.request  # type: ignore[assignment]
        native = speaks_responses(provider)
        history = await self.history(request)
        self._prepare(provider, call, history)
        upstream = provider.stream(call)
        try:
            if native:
                async for event in upstream:
                    if event.get("type") in TERMINAL_EVENTS and isinstance(event.get("response"), dict):
                        event["response"]["previous_response_id"] = request.previous_response_id
                        await self._save(request, event["response"])
                    yield event
                return
            writer = EventWriter(skeleton(request, new_id("resp"), call.model))
            reply = Reply(writer)
            async for chunk in upstream:
                read_chunk(reply, chunk)
                for event in writer.take():
                    yield event
            if writer.finish_reason is None:
                raise UpstreamTruncatedError(
                    f"upstream '{provider.name}' ended the stream before its final chunk"
                )
            final = writer.complete(call.usage or writer.token_usage)
            await self._save(request, writer.response)
            for event in final:
                yield event
        finally:
            closer = getattr(upstream, "aclose", None)
            if closer is not None:
                await closer()
