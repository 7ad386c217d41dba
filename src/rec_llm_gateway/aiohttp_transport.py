"""An httpx transport on aiohttp: httpx stays the client API, aiohttp moves the bytes.

Why: the benchmarks (``python -m benchmarks``) show the bare pass-through on aiohttp's client at
less than half the per-request overhead of httpx's own transport, about 10x its throughput at 64
concurrent requests, and less added delay per stream chunk. ``httpx-aiohttp`` exists, but it maps a
server that disconnects mid-body to ``ConnectTimeout`` (a 504 instead of a 502 here), so the gateway
keeps this small transport with its own exception mapping. Used when aiohttp is installed
(``pip install 'rec-llm-gateway[fast]'``) unless ``http.transport: httpx``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]


def _mapped(exc: BaseException) -> httpx.TransportError:
    """The httpx exception that says the same thing as an aiohttp (or asyncio) one."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS failure, TLS handshake
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    return httpx.RemoteProtocolError(message)


class _Body(httpx.AsyncByteStream):
    """The response body, yielded as soon as bytes arrive (SSE needs that, not fixed-size chunks)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        # A body read to the end returns its connection to the pool; one abandoned part way (a client
        # that disconnected) must not be reused: close it.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=AiohttpTransport())``. One aiohttp session per event loop.

    Args:
        max_connections: connection pool size (all hosts).
        keepalive_expiry: seconds an idle connection is kept.
        trust_env: honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` like httpx does.
    """

    def __init__(
        self, *, max_connections: int = 1000, keepalive_expiry: float = 60.0, trust_env: bool = True
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        # aiohttp's own trust_env looks the proxy up in a worker thread on every request; read the
        # environment once instead and remember the answer per host.
        self._proxies = urllib.request.getproxies() if trust_env else {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            # aiohttp's own verified context (ssl.create_default_context(), made when aiohttp is
            # imported): a second one cost ~45 ms of certificate loading on the first request.
            ssl=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes content-encoding itself
            cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies are never kept (see no_cookies)
            skip_auto_headers=("User-Agent", "Accept-Encoding"),  # httpx already set them
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        proxy = self._proxy(request.url) if self._proxies else None
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=content or None,
                allow_redirects=False,
                # a connection pinned to a checked address keeps TLS on the original name (egress.py)
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=proxy,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _proxy(self, url: httpx.URL) -> str | None:
        key = (url.scheme, url.host)
        if key not in self._proxy_for:
            bypass = urllib.request.proxy_bypass(url.host)
            self._proxy_for[key] = None if bypass else self._proxies.get(url.scheme)
        return self._proxy_for[key]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
