"""Raw ASGI plumbing: body reading with a cap, JSON responses, headers, CORS and gateway-key auth.

No framework: the gateway is called as ``app(scope, receive, send)`` by whatever hosts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .config import CorsConfig
from .errors import AuthenticationError, GatewayError, PayloadTooLargeError, RequestTimeoutError

if TYPE_CHECKING:
    from .routing.settings import GatewayKeyConfig

__all__ = [
    "ASGIApp",
    "Cors",
    "GatewayAuth",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "request_headers",
    "route_path",
    "send_error",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Headers = list[tuple[bytes, bytes]]
JSON_CONTENT_TYPE = (b"content-type", b"application/json")
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


async def send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    response_headers: Headers = [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    if headers:
        response_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: GatewayError, headers: Headers | None = None) -> None:
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    await send_json(send, error.status_code, error.to_json(), (headers or []) + extra)


class GatewayAuth:
    """Checks gateway keys (``Authorization: Bearer`` or ``x-api-key``) in constant time.

    Keys are kept only as SHA-256 digests; every stored digest is compared on every request so the
    time taken does not reveal which key (or how much of one) matched. The key id reported to
    plugins is the key's ``name`` (``auth.keys``), else ``key-`` plus the first 8 hex digits of the
    digest: stable, and not the key.
    """

    def __init__(
        self,
        keys: list[SecretStr],
        admin_keys: list[SecretStr] | None = None,
        named: Sequence[GatewayKeyConfig] = (),
    ) -> None:
        self._keys = self._digests([(key, None) for key in keys] + [(key.key, key.name) for key in named])
        self._admin_keys = self._digests([(key, None) for key in admin_keys or []])
        self.named = [(key_id(key.key.get_secret_value(), key.name), key) for key in named]
        """``(key id, settings)`` of every ``auth.keys`` entry (for per-key limits)."""

    @staticmethod
    def _digests(keys: list[tuple[SecretStr, str | None]]) -> list[tuple[bytes, str]]:
        digests = []
        for key, name in keys:
            value = key.get_secret_value()
            if value:
                digests.append((hashlib.sha256(value.encode()).digest(), key_id(value, name)))
        return digests

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, headers: dict[str, str]) -> str | None:
        """The key id of the presented gateway key; ``None`` when auth is off."""
        if not self._keys:
            return None
        return self._match(headers, self._keys)

    def authenticate_admin(self, headers: dict[str, str]) -> str | None:
        """Admin routes take an admin key when admin keys are configured, else a gateway key."""
        if self._admin_keys:
            return self._match(headers, self._admin_keys)
        return self.authenticate(headers)

    def _match(self, headers: dict[str, str], keys: list[tuple[bytes, str]]) -> str:
        presented = _presented_key(headers)
        if presented is None:
            raise AuthenticationError(
                "Missing gateway API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        digest = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for stored, key_id in keys:
            if hmac.compare_digest(stored, digest):
                found = key_id
        if found is None:
            raise AuthenticationError("Invalid gateway API key.")
        return found


def key_id(key: str, name: str | None = None) -> str:
    """The id plugins see for a gateway key: its name, or ``key-`` and 8 hex digits of its digest."""
    return name or "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _presented_key(headers: dict[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class Cors:
    """CORS from config. Preflights are answered here; an origin is echoed only if it is allowed."""

    def __init__(self, config: CorsConfig) -> None:
        self._any = "*" in config.allow_origins
        self._origins = frozenset(origin.rstrip("/") for origin in config.allow_origins)
        self._credentials = config.allow_credentials
        self._preflight_headers: Headers = [
            (b"access-control-allow-methods", ", ".join(config.allow_methods).encode()),
            (b"access-control-allow-headers", ", ".join(config.allow_headers).encode()),
            (b"access-control-max-age", str(config.max_age).encode()),
        ]
        self._expose = ", ".join(config.expose_headers).encode()

    def _allow(self, origin: str) -> Headers:
        if self._any and not self._credentials:
            return [(b"access-control-allow-origin", b"*")]
        if origin.rstrip("/") in self._origins:
            headers: Headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"origin"),
            ]
            if self._credentials:
                headers.append((b"access-control-allow-credentials", b"true"))
            return headers
        return []

    def response_headers(self, headers: dict[str, str]) -> Headers:
        origin = headers.get("origin")
        if not origin:
            return []
        allowed = self._allow(origin)
        if allowed and self._expose:
            allowed.append((b"access-control-expose-headers", self._expose))
        return allowed

    def preflight_headers(self, headers: dict[str, str]) -> Headers | None:
        """Headers for a preflight; ``None`` when the origin is not allowed."""
        origin = headers.get("origin")
        if not origin:
            return None
        allowed = self._allow(origin)
        return allowed + self._preflight_headers if allowed else None
