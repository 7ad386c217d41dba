"""Connections the gateway opens on a client's behalf (image URLs): what they may reach and carry.

- No cookies: the upstream client keeps none, so one tenant's cookie never rides on another's request
  and a server that sets thousands cannot grow the gateway's memory.
- Public addresses only (unless configured otherwise), including the IPv6 forms that embed an IPv4
  address (IPv4-mapped and -compatible, SIIT, NAT64, 6to4, Teredo): the embedded address is checked.
- The connection goes to the address that was checked (``pinned``): the name is resolved once, so
  a DNS answer that changes between check and connection (DNS rebinding) cannot reach an internal host.
- httpx's request log shows URLs without their query or user info (``redact_logged_urls``).
- URLs the gateway cannot parse, or that name a host in an odd form, are the client's 400.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from http.cookiejar import CookieJar
from typing import Any, Final

import httpx

__all__ = [
    "Resolver",
    "embedded_ipv4",
    "is_public",
    "no_cookies",
    "pinned",
    "redact_logged_urls",
    "resolve",
    "upstream_client",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: how names are looked up (tests pass their own)."""

_NAT64: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LAST_32_BITS: Final = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated, still routed by some stacks)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # SIIT "IPv4-translated"
    *_NAT64,
)


class _NoCookieJar(CookieJar):
    """A cookie jar that never stores a cookie (so never sends one either)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


def upstream_client(transport: httpx.AsyncBaseTransport, *, trust_env: bool) -> httpx.AsyncClient:
    """The shared upstream client: no redirects followed, no cookies kept, URLs logged without secrets."""
    redact_logged_urls()
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(60.0, connect=10.0),
        follow_redirects=False,
        trust_env=trust_env,
        cookies=no_cookies(),  # one tenant's cookie must not ride on another's request
    )


def no_cookies() -> CookieJar:
    """A cookie jar for an ``httpx.AsyncClient`` that keeps none (httpx uses a jar as given, but
    copies the cookies of an ``httpx.Cookies``)."""
    return _NoCookieJar()


class _UrlsWithoutSecrets(logging.Filter):
    """httpx logs every request's URL at INFO; a presigned image URL carries its credentials in the
    query and a URL may carry ``user:password@``: log the URL without either."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(
                arg.copy_with(userinfo=b"", query=None, fragment=None) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


_URL_FILTER: Final = _UrlsWithoutSecrets()


def redact_logged_urls() -> None:
    """Install (once) the filter that keeps credentials in URLs out of httpx's log."""
    httpx_logger = logging.getLogger("httpx")
    if _URL_FILTER not in httpx_logger.filters:
        httpx_logger.addFilter(_URL_FILTER)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and reaches through translation), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _LAST_32_BITS) and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally reachable, and so is any IPv4 address it embeds."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and not inner.is_global:
            return False
    return True


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver (``getaddrinfo`` off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%")[0])  # drop an IPv6 zone


async def _lookup(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [_address(host)]
    except ValueError:
        pass  # a name, not an address literal
    try:
        return [_address(text) for text in await resolver(host, port)]
    except (OSError, ValueError):
        return []


async def pinned(url: httpx.URL, resolver: Resolver) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Resolve ``url``'s host once and check every address; the URL to connect to (the checked
    address), the ``Host`` header and the request extensions that keep TLS on the original name.

    Raises ``LookupError`` when the name does not resolve, ``PermissionError`` for a non-public address.
    """
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await _lookup(host, port, resolver)
    if not addresses:
        raise LookupError(host)
    for address in addresses:
        if not is_public(address):
            raise PermissionError(str(address))
    extensions: dict[str, Any] = {"sni_hostname": host} if url.scheme == "https" else {}
    return url.copy_with(host=str(addresses[0])), {"host": url.netloc.decode("ascii")}, extensions
