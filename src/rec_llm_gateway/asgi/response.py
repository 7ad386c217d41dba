"""The response side of raw ASGI: a JSON body, and an error in OpenAI's envelope."""

from __future__ import annotations

from ..errors import GatewayError
from .types import Headers, Send

__all__ = ["JSON_CONTENT_TYPE", "send_error", "send_json"]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    response_headers: Headers = [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    if headers:
        response_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: GatewayError, headers: Headers | None = None) -> None:
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    await send_json(send, error.status_code, error.to_json(), (headers or []) + extra)
