"""Routes other than chat load their operation when first used: ``import rec_llm_gateway`` and a
gateway that serves only chat never import the Messages, Responses or legacy completions
machinery (import time)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import asyncio, sys
import rec_llm_gateway
lazy = ("rec_llm_gateway.pipeline.messages", "rec_llm_gateway.pipeline.responses",
        "rec_llm_gateway.pipeline.completions")
print(*[name in sys.modules for name in lazy])
gateway = rec_llm_gateway.Gateway({"providers": {"echo": {}}})

async def call(path, body):
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json")]}
    await gateway(scope, receive, send)
    return sent[0]["status"]

chat = b'{"model": "echo:m", "messages": [{"role": "user", "content": "hi"}]}'
print(asyncio.run(call("/v1/chat/completions", chat)), *[name in sys.modules for name in lazy])
message = b'{"model": "echo:m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'
print(asyncio.run(call("/v1/messages", message)), *[name in sys.modules for name in lazy])
"""


def test_messages_and_responses_are_imported_when_their_route_is_first_used() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:3] == [
        "False False False",
        "200 False False False",
        "200 True False False",
    ]
