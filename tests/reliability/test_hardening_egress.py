"""Issue 16 (items 5, 10-12): what the gateway's own outbound connections may reach and keep.

Cookies, DNS rebinding, IPv6 forms that embed a private IPv4 address, image URLs in odd forms and
URL credentials in error text. Names are resolved by a resolver the test controls (``socket.getaddrinfo``
patched), and every connection to a non-loopback address is refused by a guard before it is made.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.providers import egress
from rec_llm_gateway.providers.bedrock.images import ImageFetchSettings, fetch_images

from ..bedrock_support import PNG
from ..support import FakeUpstream, Recorded, Reply, serve_fake

LOOPBACK = ImageFetchSettings(allow_private_networks=True, timeout=5)
CHECKED = ImageFetchSettings(timeout=5)


def cookie_monster(request: Recorded) -> Reply:
    headers = {"set-cookie": f"tenant={request.query or 'x'}; Path=/"}
    return Reply(body=PNG, content_type="image/png", headers=headers)


@pytest.fixture(scope="module")
def image_server() -> Iterator[FakeUpstream]:
    with serve_fake(cookie_monster) as fake:
        yield fake


@pytest.fixture(params=["httpx", "aiohttp"])
async def gateway_http(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's own upstream client, on each transport."""
    gateway = Gateway({"http": {"transport": request.param}})
    async with gateway:
        yield gateway.http_client()


# -- 5: cookies ------------------------------------------------------------------------------------


async def test_the_upstream_client_keeps_no_cookies(
    image_server: FakeUpstream, gateway_http: httpx.AsyncClient
) -> None:
    image_server.reset()
    for tenant in ("a", "b", "c"):
        await fetch_images([f"{image_server.url}/cat.png?{tenant}"], gateway_http, LOOPBACK)
    assert [request.headers.get("cookie") for request in image_server.requests] == [None, None, None]
    assert not list(gateway_http.cookies.jar)


# -- 11: DNS rebinding and embedded IPv4 -----------------------------------------------------------


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """``answers[name]``: what the system resolver says for ``name``, one answer per lookup (the last
    one repeats). Connections to anything but loopback are refused before a packet is sent."""
    answers: dict[str, list[str]] = {}
    real_getaddrinfo = socket.getaddrinfo
    real_connect = anyio.connect_tcp

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        queue = answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    async def connect_tcp(remote_host: Any, remote_port: int, **kwargs: Any) -> Any:
        infos = socket.getaddrinfo(str(remote_host), remote_port, type=socket.SOCK_STREAM)
        address = str(infos[0][4][0])
        if not ipaddress.ip_address(address).is_loopback:
            raise OSError(f"the test refuses to connect to {address}")
        return await real_connect(address, remote_port, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return answers


async def test_dns_rebinding_cannot_reach_loopback(
    image_server: FakeUpstream, resolver: dict[str, list[str]]
) -> None:
    """Public for the check, loopback for the connection: before the fix the second answer was
    connected to and the internal server was read."""
    image_server.reset()
    resolver["rebind.test"] = ["93.184.216.34", "127.0.0.1"]
    port = image_server.url.rsplit(":", 1)[1]
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidRequestError) as refused:
            await fetch_images([f"http://rebind.test:{port}/cat.png"], http, CHECKED)
    assert refused.value.status_code == 400
    assert image_server.requests == []


async def test_the_connection_goes_to_the_checked_address_with_the_original_host(
    image_server: FakeUpstream,
    resolver: dict[str, list[str]],
    gateway_http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image_server.reset()
    monkeypatch.setattr(egress, "is_public", lambda address: True)  # let loopback pass the check
    resolver["images.test"] = ["127.0.0.1", "192.0.2.1"]
    port = image_server.url.rsplit(":", 1)[1]
    url = f"http://images.test:{port}/cat.png"
    blocks = await fetch_images([url], gateway_http, CHECKED)
    assert blocks[url]["format"] == "png"
    assert image_server.last.headers["host"] == f"images.test:{port}"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 well-known prefix, 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64, the metadata service
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix, 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:1::",  # 6to4 of 192.168.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "::ffff:0:7f00:1",  # SIIT (::ffff:0:0:0/96) 127.0.0.1
        "::ffff:0:a00:1",  # SIIT 10.0.0.1
        "::ffff:127.0.0.1",  # IPv4-mapped
    ],
)
async def test_ipv6_forms_embedding_a_private_ipv4_are_refused(
    address: str, resolver: dict[str, list[str]]
) -> None:
    resolver["v6.test"] = [address]
    async with httpx.AsyncClient() as http:
        for url in (f"http://[{address}]/x.png", "http://v6.test/x.png"):
            with pytest.raises(InvalidRequestError, match="non-public address"):
                await fetch_images([url], http, CHECKED)


def test_ipv6_forms_embedding_a_public_ipv4_stay_public() -> None:
    for address in ("64:ff9b::808:808", "2002:808:808::1", "2606:2800:220:1:248:1893:25c8:1946"):
        assert egress.is_public(ipaddress.ip_address(address)), address


# -- 12: odd image URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/x.png",
        "http://127.000.000.001/x.png",
        "http://\uff11\uff12\uff17.0.0.1/x.png",  # full-width digits
        "http://example.com\x00.evil/x.png",
        "http://[::1/x.png",
        "http://exa mple.com/x.png",
    ],
)
async def test_odd_image_urls_are_a_400_naming_the_parameter(url: str) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidRequestError) as refused:
            await fetch_images([url], http, CHECKED)
    assert refused.value.status_code == 400
    assert refused.value.param == "messages"


# -- 10: URL credentials in error text -------------------------------------------------------------


async def test_image_errors_never_show_url_credentials(image_server: FakeUpstream) -> None:
    port = image_server.url.rsplit(":", 1)[1]
    async with httpx.AsyncClient() as http:
        for url in (
            f"http://user:hunter2pw@127.0.0.1:{port}/cat.png?X-Amz-Signature=sig",
            "http://user:hunter2pw@127.0.0.1:1/cat.png?X-Amz-Signature=sig",  # nothing listens
        ):
            with pytest.raises(InvalidRequestError) as refused:
                await fetch_images(
                    [url],
                    http,
                    CHECKED
                    if ":1/" in url
                    else ImageFetchSettings(allow_private_networks=True, max_bytes=10),
                )
            assert "hunter2pw" not in refused.value.message
            assert "X-Amz-Signature" not in refused.value.message


async def test_httpx_request_log_shows_no_url_credentials(
    image_server: FakeUpstream, gateway_http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{image_server.url}/cat.png?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=s3cr3tsig"
    with caplog.at_level(logging.INFO):  # (httpcore's DEBUG lines show the cookie echoing the query)
        await fetch_images([url], gateway_http, LOOPBACK)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/cat.png" in logged  # the request was logged, without its query
    for secret in ("s3cr3tsig", "AKIAEXAMPLE"):
        assert secret not in logged
