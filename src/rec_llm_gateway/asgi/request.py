"""The request side of raw ASGI: the route path under a mount, headers, the request id, and the body
read with a size cap and a time limit."""

from __future__ import annotations

import asyncio
import os
import re

from ..errors import PayloadTooLargeError, RequestTimeoutError
from .types import Receive, Scope

__all__ = [
    "ClientDisconnected",
    "read_body",
    "redacted",
    "request_headers",
    "request_id_from",
    "route_path",
]

_SENSITIVE_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"})
# Matched with fullmatch: ``$`` would also accept a trailing newline, which would then be echoed into
# the response's own x-request-id header (a header-injection vector; found by the fuzz suite).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class ClientDisconnected(Exception):
    """The client went away before the request body was complete."""


def route_path(scope: Scope) -> str:
    """The path relative to where the gateway is mounted, without a trailing slash.

    Starlette/FastAPI mounts keep the full ``path`` and grow ``root_path``; Litestar mounts rewrite
    ``path`` and leave ``root_path`` alone. This handles both (the rule Starlette itself uses).
    """
    path: str = scope.get("path") or "/"
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root) :]
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    return path or "/"


def request_headers(scope: Scope) -> dict[str, str]:
    """Inbound headers, names lower-cased, repeated ones joined with ``, ``."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def redacted(headers: dict[str, str]) -> dict[str, str]:
    """A copy safe to hand to plugins and logs: credentials replaced."""
    return {name: "[redacted]" if name in _SENSITIVE_HEADERS else value for name, value in headers.items()}


def request_id_from(headers: dict[str, str]) -> str:
    """The client's ``x-request-id`` when it is a sane token, else a fresh one."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return "req_" + os.urandom(12).hex()


async def read_body(receive: Receive, limit: int, content_length: str | None, within_seconds: float) -> bytes:
    """The whole request body.

    ``PayloadTooLargeError`` as soon as it passes ``limit`` bytes; ``RequestTimeoutError`` when it is
    not complete within ``within_seconds`` (servers time out idle connections, not a stalled upload).
    """
    # isascii() first: headers are decoded as latin-1, where "²" and "¹" count as digits to isdigit()
    # but not to int() (a 500 before this check; found by the fuzz suite).
    if (
        content_length is not None
        and content_length.isascii()
        and content_length.isdigit()
        and int(content_length) > limit
    ):
        raise PayloadTooLargeError(f"Request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within_seconds):
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "http.disconnect":
                    raise ClientDisconnected
                if kind != "http.request":
                    continue
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLargeError(f"Request body is larger than the limit of {limit} bytes.")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise RequestTimeoutError(
            f"The request body was not received within {within_seconds:g} seconds."
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
