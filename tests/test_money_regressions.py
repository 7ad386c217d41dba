"""Money regressions (issue 16, items 1-4): usage counted once, budgets that never fail open."""

from __future__ import annotations

from typing import Any

from rec_llm_gateway import Gateway, hookimpl

from .routing_support import client
from .support import FakeUpstream, Reply, completion

CHAT = "/v1/chat/completions"


class Seen:
    def __init__(self) -> None:
        self.responses: list[Any] = []

    @hookimpl
    def post_response(self, response: Any) -> None:
        self.responses.append(response)


async def test_a_200_of_an_unexpected_shape_is_counted_once(upstream: FakeUpstream) -> None:
    # The upstream's answer passes through to the client but does not validate as a ChatCompletion
    # for the post_response hook (``created`` is not a number).
    odd = completion("fine", created="soon")
    upstream.reply(Reply(json=odd))
    seen = Seen()
    config = {"providers": {"openai": {"api_key": "sk-x", "base_url": f"{upstream.url}/v1"}}}
    gateway = Gateway(config, plugins=[seen])
    async with client(gateway) as http:
        response = await http.post(
            CHAT, json={"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert response.status_code == 200
    [record] = gateway.usage.get_all()
    assert (record.calls, record.errors) == (1, 0)
    assert seen.responses == []  # the hook could not be given a valid response: skipped, logged
